"""The artifact stores, each test run against a local folder and against S3 (moto's real HTTP server).

The S3 fixtures are defined here and imported by the serializer and registry tests.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_mlpipe.artifacts.store import (
    ArtifactNotFoundError,
    ArtifactStore,
    DigestMismatchError,
    LocalArtifactStore,
    S3ArtifactStore,
    blob_key,
    store_from_url,
)
from airflow_provider_mlpipe.exceptions import ArtifactError

MIB = 1024 * 1024


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, on a free port (port 0: the OS picks one)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and region only: no real profile, token or endpoint leaks into a test."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # A proxy configured on the machine must not intercept requests to the local server.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_env: None) -> str:
    """A new, empty bucket for each test."""
    import boto3

    name = f"mlpipe-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """The same test against a local folder and an S3 prefix."""
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "store")
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return S3ArtifactStore(bucket, "team/artifacts", endpoint_url=endpoint)


def blob_keys(store: ArtifactStore) -> list[str]:
    """The blob keys actually present in the store (relative to its root), read behind its back."""
    if isinstance(store, LocalArtifactStore):
        objects = store.root / "objects"
        return sorted(p.relative_to(store.root).as_posix() for p in objects.rglob("*") if p.is_file())
    assert isinstance(store, S3ArtifactStore)
    import boto3

    client = boto3.client("s3", endpoint_url=store.endpoint_url)
    root = f"{store.prefix}/"
    response = client.list_objects_v2(Bucket=store.bucket, Prefix=root + "objects/")
    return sorted(item["Key"][len(root) :] for item in response.get("Contents", []))


def overwrite_blob(store: ArtifactStore, digest: str, data: bytes) -> None:
    """Corrupt a blob behind the store's back (a disk error, a tool writing where it should not)."""
    if isinstance(store, LocalArtifactStore):
        path = store.root / blob_key(digest)
        path.chmod(0o644)
        path.write_bytes(data)
        return
    assert isinstance(store, S3ArtifactStore)
    import boto3

    client = boto3.client("s3", endpoint_url=store.endpoint_url)
    client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/{blob_key(digest)}", Body=data)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_url_and_env(store: ArtifactStore) -> tuple[str, dict[str, str]]:
    """How a separate process reaches the same store (S3: through ``AWS_ENDPOINT_URL``)."""
    env = dict(os.environ)
    if isinstance(store, S3ArtifactStore):
        assert store.endpoint_url is not None
        env["AWS_ENDPOINT_URL"] = store.endpoint_url
    return store.url, env


# -- blobs -----------------------------------------------------------------------------------------
def test_put_bytes_is_content_addressed_and_stored_once(store: ArtifactStore):
    data = b"the same bytes"
    first = store.put_bytes(data)
    second = store.put_bytes(data)

    assert first == second
    assert first.digest == digest_of(data)
    assert first.size == len(data)
    assert store.get_bytes(first.digest) == data
    assert store.exists(first.digest)
    hexdigest = first.digest.removeprefix("sha256:")
    assert blob_keys(store) == [f"objects/sha256/{hexdigest[:2]}/{hexdigest}"]
    assert first.uri.endswith(f"objects/sha256/{hexdigest[:2]}/{hexdigest}")
    assert first.uri.startswith("file:///" if isinstance(store, LocalArtifactStore) else "s3://")

    other = store.put_bytes(b"other bytes")
    assert other.digest != first.digest
    assert len(blob_keys(store)) == 2


def test_put_file_and_get_file_round_trip(store: ArtifactStore, tmp_path: Path):
    data = os.urandom(3 * MIB + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    blob = store.put_file(source)
    assert blob.digest == digest_of(data)
    assert blob.size == len(data)
    # put_bytes of the same content finds the blob put_file wrote: one blob, whatever the API.
    assert store.put_bytes(data).digest == blob.digest
    assert len(blob_keys(store)) == 1

    destination = tmp_path / "out" / "copy.bin"
    assert store.get_file(blob.digest, destination) == destination
    assert destination.read_bytes() == data
    assert [p.name for p in destination.parent.iterdir()] == ["copy.bin"]  # no temp file left next to it


def test_empty_blob(store: ArtifactStore):
    blob = store.put_bytes(b"")
    assert blob.size == 0
    assert store.get_bytes(blob.digest) == b""


def test_missing_blob_is_not_found(store: ArtifactStore, tmp_path: Path):
    digest = digest_of(b"never stored")
    assert not store.exists(digest)
    with pytest.raises(ArtifactNotFoundError, match=digest):
        store.get_bytes(digest)
    with pytest.raises(ArtifactNotFoundError):
        store.get_file(digest, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "digest", ["sha256:../../etc/passwd", "md5:" + "0" * 32, "sha256:" + "A" * 64, "sha256:" + "0" * 63, ""]
)
def test_malformed_digests_are_refused(store: ArtifactStore, digest: str):
    with pytest.raises(ArtifactError, match="invalid artifact digest"):
        store.get_bytes(digest)
    with pytest.raises(ArtifactError, match="invalid artifact digest"):
        store.exists(digest)


def test_corrupted_blob_fails_the_digest_check(store: ArtifactStore, tmp_path: Path):
    blob = store.put_bytes(b"good content")
    overwrite_blob(store, blob.digest, b"evil content")

    with pytest.raises(DigestMismatchError, match="corrupted"):
        store.get_bytes(blob.digest)
    destination = tmp_path / "dest" / "file.txt"
    with pytest.raises(DigestMismatchError):
        store.get_file(blob.digest, destination)
    # Neither the destination nor a temp file is left with the bad bytes.
    assert list(destination.parent.iterdir()) == []


def test_truncated_local_blob_fails_the_digest_check(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    blob = store.put_bytes(b"x" * 10_000)
    path = store.root / blob_key(blob.digest)
    path.chmod(0o644)
    with open(path, "r+b") as stream:
        stream.truncate(5_000)
    with pytest.raises(DigestMismatchError):
        store.get_bytes(blob.digest)


def test_local_blobs_are_read_only_and_no_temp_files_remain(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    source = tmp_path / "f.txt"
    source.write_text("file content")
    blobs = [store.put_bytes(b"a"), store.put_bytes(b"a"), store.put_file(source), store.put_file(source)]
    store.write_document("registry/g/00000001.json", b"{}", create_only=True)
    store.write_document("registry/g/00000001.json", b"{}", create_only=True)
    store.write_document("registry/g/00000001.json", b"{}")

    for blob in blobs:
        assert (store.root / blob_key(blob.digest)).stat().st_mode & 0o777 == 0o444
    assert list((store.root / "tmp").iterdir()) == []
    assert list(store.root.rglob(".*")) == []


def test_local_store_creates_nothing_until_the_first_write(tmp_path: Path):
    store = store_from_url(str(tmp_path / "later"))
    assert store.list_documents("registry/") == []
    assert not store.exists(digest_of(b"x"))
    assert not (tmp_path / "later").exists()


def test_a_reader_never_sees_a_partial_blob(store: ArtifactStore):
    payloads = [bytes([index]) * (2 * MIB) for index in range(6)]
    digests = [digest_of(payload) for payload in payloads]
    done = threading.Event()
    errors: list[BaseException] = []

    def read_continuously() -> None:
        while not done.is_set():
            for digest, payload in zip(digests, payloads, strict=True):
                try:
                    # get_bytes checks the digest: a partial blob would raise DigestMismatchError.
                    data = store.get_bytes(digest)
                except ArtifactNotFoundError:
                    continue
                except BaseException as error:  # reported to the test thread below
                    errors.append(error)
                    return
                if data != payload:
                    errors.append(AssertionError(f"read {len(data)} bytes that are not the payload"))
                    return

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for payload in payloads:
            store.put_bytes(payload)
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert all(store.exists(digest) for digest in digests)


def test_concurrent_threads_writing_the_same_blob_all_succeed(store: ArtifactStore):
    data = os.urandom(MIB)
    barrier = threading.Barrier(8)

    def write(_: int) -> str:
        barrier.wait()
        return store.put_bytes(data).digest

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(write, range(8)))
    assert set(digests) == {digest_of(data)}
    assert len(blob_keys(store)) == 1
    assert store.get_bytes(digest_of(data)) == data


WRITER = textwrap.dedent(
    """
    import pathlib, sys, time
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    url, payload, go, key, ident = sys.argv[1:]
    store = store_from_url(url)
    data = pathlib.Path(payload).read_bytes()
    deadline = time.monotonic() + 60
    while not pathlib.Path(go).exists():  # start together, to overlap the writes
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.002)
    blob = store.put_bytes(data)
    won = store.write_document(key, ident.encode(), create_only=True)
    print(blob.digest, won)
    """
)


def run_writer_processes(
    store: ArtifactStore, tmp_path: Path, data: bytes, count: int
) -> list[tuple[str, bool]]:
    url, env = store_url_and_env(store)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(data)
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(payload), str(go), "docs/winner", f"writer-{index}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    time.sleep(0.5)  # let the interpreters start and import, so that the writes overlap
    go.touch()
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        digest, won = stdout.split()
        results.append((digest, won == "True"))
    return results


def test_concurrent_processes_writing_the_same_blob_all_succeed(store: ArtifactStore, tmp_path: Path):
    data = os.urandom(2 * MIB)
    results = run_writer_processes(store, tmp_path, data, count=5)

    assert {digest for digest, _ in results} == {digest_of(data)}
    assert len(blob_keys(store)) == 1
    assert store.get_bytes(digest_of(data)) == data
    if isinstance(store, LocalArtifactStore):
        assert list((store.root / "tmp").iterdir()) == []
        # os.link is atomic: exactly one process created the document.
        winners = [won for _, won in results if won]
        assert len(winners) == 1
    # On S3 the conditional PUT is atomic too, but moto serves requests in threads without
    # locking its check against its write, so exactly-one is only asserted for the local store.
    assert store.read_document("docs/winner").decode().startswith("writer-")


# -- documents -------------------------------------------------------------------------------------
def test_documents_create_only_overwrite_read_and_list(store: ArtifactStore):
    assert store.write_document("registry/abalone/00000001.json", b"first", create_only=True) is True
    assert store.write_document("registry/abalone/00000001.json", b"second", create_only=True) is False
    assert store.read_document("registry/abalone/00000001.json") == b"first"

    assert store.write_document("registry/abalone/00000001.json", b"third") is True
    assert store.read_document("registry/abalone/00000001.json") == b"third"

    store.write_document("registry/abalone/00000002.json", b"2")
    store.write_document("registry/other/00000001.json", b"o")
    store.write_document("notes.txt", b"n")
    store.put_bytes(b"a blob is not a document")

    assert store.list_documents("registry/abalone/") == [
        "registry/abalone/00000001.json",
        "registry/abalone/00000002.json",
    ]
    # A plain string prefix, as in S3.
    assert store.list_documents("registry/ab") == store.list_documents("registry/abalone/")
    assert store.list_documents("registry/") == [
        "registry/abalone/00000001.json",
        "registry/abalone/00000002.json",
        "registry/other/00000001.json",
    ]
    # Everything but the blobs.
    assert store.list_documents() == ["notes.txt", *store.list_documents("registry/")]
    assert store.list_documents("nothing/here/") == []


def test_missing_document_is_not_found(store: ArtifactStore):
    with pytest.raises(ArtifactNotFoundError, match="registry/none/00000001.json"):
        store.read_document("registry/none/00000001.json")


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "registry/../../x",
        "registry/..",
        "/etc/passwd",
        "registry\\..\\x",
        "",
        ".hidden",
        "registry//x",
        "registry/./x",
        "registry/x/",
        "objects/sha256/ab/cd",
        "tmp/x",
        "C:/x",
    ],
)
def test_document_keys_cannot_escape_the_root(store: ArtifactStore, tmp_path: Path, key: str):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ArtifactError, match="invalid document key"):
        store.write_document(key, b"escaped")
    with pytest.raises(ArtifactError, match="invalid document key"):
        store.read_document(key)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("prefix", ["../", "/abs", "a/../", "objects/", "a\\b"])
def test_list_prefixes_are_checked(store: ArtifactStore, prefix: str):
    with pytest.raises(ArtifactError):
        store.list_documents(prefix)


def test_concurrent_create_only_writes_have_one_winner(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    barrier = threading.Barrier(16)

    def create(index: int) -> bool:
        barrier.wait()
        return store.write_document("locks/one", f"writer {index}".encode(), create_only=True)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(16)))
    assert results.count(True) == 1
    assert store.read_document("locks/one") == f"writer {results.index(True)}".encode()
    assert [p.name for p in (store.root / "locks").iterdir()] == ["one"]


def test_a_reader_never_sees_a_partial_document(store: ArtifactStore):
    versions = [b"a" * MIB, b"b" * MIB]
    store.write_document("docs/big", versions[0])
    done = threading.Event()
    bad_reads: list[int] = []

    def read_continuously() -> None:
        while not done.is_set():
            data = store.read_document("docs/big")
            if data not in versions:
                bad_reads.append(len(data))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for round_ in range(10):
            store.write_document("docs/big", versions[round_ % 2])
    finally:
        done.set()
        reader.join()
    assert bad_reads == []
    assert store.read_document("docs/big") == versions[1]


# -- S3 specifics ----------------------------------------------------------------------------------
def test_s3_multipart_upload_of_a_large_file(s3_bucket: str, moto_endpoint: str, tmp_path: Path):
    store = S3ArtifactStore(
        s3_bucket, "mp", endpoint_url=moto_endpoint, multipart_threshold=MIB, part_size=5 * MIB
    )
    data = os.urandom(11 * MIB)
    source = tmp_path / "large.bin"
    source.write_bytes(data)

    blob = store.put_file(source)
    assert blob.digest == digest_of(data)
    assert store.get_bytes(blob.digest) == data
    # Writing it again is a no-op, and no unfinished upload is left behind.
    assert store.put_file(source) == blob
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert blob_keys(store) == [blob_key(blob.digest)]


def test_s3_store_creates_its_client_lazily_and_pickles(s3_bucket: str, moto_endpoint: str):
    store = S3ArtifactStore(s3_bucket, endpoint_url=moto_endpoint)
    assert store._client is None
    digest = store.put_bytes(b"x").digest
    assert store._client is not None
    copy = pickle.loads(pickle.dumps(store))
    assert copy._client is None
    assert copy.get_bytes(digest) == b"x"
    assert store.url == f"s3://{s3_bucket}"
    assert blob_keys(S3ArtifactStore(s3_bucket, "", endpoint_url=moto_endpoint)) == []  # no prefix


def test_s3_store_uses_a_given_client(s3_bucket: str, moto_endpoint: str):
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    store = S3ArtifactStore(s3_bucket, "given", client=client)
    blob = store.put_bytes(b"through the given client")
    assert client.get_object(Bucket=s3_bucket, Key=f"given/{blob_key(blob.digest)}")["Body"].read() == (
        b"through the given client"
    )


def test_s3_store_from_url_honours_aws_endpoint_url(
    s3_bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    store = store_from_url(f"s3://{s3_bucket}/from/url/")
    assert isinstance(store, S3ArtifactStore)
    assert (store.bucket, store.prefix, store.url) == (s3_bucket, "from/url", f"s3://{s3_bucket}/from/url")
    blob = store.put_bytes(b"via env")
    assert blob.uri == f"s3://{s3_bucket}/from/url/{blob_key(blob.digest)}"
    assert store.get_bytes(blob.digest) == b"via env"


def test_s3_errors_are_artifact_errors(moto_endpoint: str, aws_env: None):
    store = S3ArtifactStore("no-such-bucket-here", endpoint_url=moto_endpoint)
    with pytest.raises(ArtifactError, match="no-such-bucket-here"):
        store.put_bytes(b"x")


# -- store_from_url --------------------------------------------------------------------------------
def test_store_from_url_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    plain = store_from_url(str(tmp_path / "a"))
    assert isinstance(plain, LocalArtifactStore) and plain.root == tmp_path / "a"
    from_file_url = store_from_url((tmp_path / "with space").as_uri())
    assert isinstance(from_file_url, LocalArtifactStore) and from_file_url.root == tmp_path / "with space"
    home = store_from_url("~/artifacts")
    assert isinstance(home, LocalArtifactStore) and home.root == tmp_path / "artifacts"
    monkeypatch.chdir(tmp_path)
    relative = store_from_url("relative/store")
    assert isinstance(relative, LocalArtifactStore) and relative.root == tmp_path / "relative" / "store"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "gs://bucket/x",
        "http://example.com/x",
        "s3://",
        "s3:///prefix",
        "file://host/x",
        "s3://b/../x",
    ],
)
def test_store_from_url_refuses_other_urls(url: str):
    with pytest.raises(ArtifactError):
        store_from_url(url)


def test_importing_the_package_and_making_an_s3_store_does_not_import_boto3():
    code = (
        "import sys\n"
        "from airflow_provider_mlpipe.artifacts.store import store_from_url\n"
        "from airflow_provider_mlpipe.artifacts import serializers, registry\n"
        "store_from_url('s3://bucket/prefix')\n"
        "loaded = [name for name in ('boto3', 'botocore', 'pandas', 'numpy') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
