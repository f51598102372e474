"""The artifact store's contract, each test run against a local folder and against S3.

The S3 server and connection fixtures are in ``conftest.py``; S3-only behaviour is in ``test_s3.py``,
local-only faults in ``test_local_faults.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.store import (
    ArtifactNotFoundError,
    ArtifactStore,
    DigestMismatchError,
    blob_key,
    store_from_url,
)
from airflow_provider_mlpipe.exceptions import ArtifactError

from .helpers import MIB, blob_keys, digest_of, overwrite_blob, store_url_and_env


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
        digest, won = stdout.splitlines()[-1].split()  # Airflow may log to stdout before
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
    # A create-only write is atomic in both stores: exactly one process created the document.
    assert [won for _, won in results].count(True) == 1
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


def test_concurrent_create_only_writes_have_one_winner(store: ArtifactStore):
    barrier = threading.Barrier(16)

    def create(index: int) -> bool:
        barrier.wait()
        return store.write_document("locks/one", f"writer {index}".encode(), create_only=True)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(16)))
    assert results.count(True) == 1
    assert store.read_document("locks/one") == f"writer {results.index(True)}".encode()
    assert store.list_documents("locks/") == ["locks/one"]
    if isinstance(store, LocalArtifactStore):
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
        "heavy = ('boto3', 'botocore', 'pandas', 'numpy', 'airflow.providers.amazon', 'airflow')\n"
        "loaded = [name for name in heavy if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_store_classes_can_still_be_imported_from_the_store_module():
    from airflow_provider_mlpipe.artifacts import store

    assert store.LocalArtifactStore is LocalArtifactStore
    assert store.S3ArtifactStore is S3ArtifactStore
    with pytest.raises(AttributeError):
        store.NoSuchStore  # noqa: B018


def test_compare_and_swap_of_a_document(store: ArtifactStore):
    store.write_document("docs/cas", b"one")
    data, tag = store.read_document_tagged("docs/cas")
    assert data == b"one"
    assert store.write_document("docs/cas", b"two", if_match=tag) is True
    # The tag is of the version that was read: a second swap from it is refused.
    assert store.write_document("docs/cas", b"three", if_match=tag) is False
    assert store.read_document("docs/cas") == b"two"
    assert store.write_document("docs/absent", b"x", if_match=tag) is False
    with pytest.raises(ArtifactNotFoundError):
        store.read_document("docs/absent")
    with pytest.raises(ArtifactError, match="exclude"):
        store.write_document("docs/cas", b"x", create_only=True, if_match=tag)


def test_concurrent_compare_and_swap_loses_no_update(store: ArtifactStore):
    """Eight threads each add their name to one document, with compare-and-swap and retry."""
    store.write_document("docs/list", b"")
    barrier = threading.Barrier(8)

    def append(index: int) -> int:
        barrier.wait()
        for attempt in range(200):
            data, tag = store.read_document_tagged("docs/list")
            if store.write_document("docs/list", data + f"{index};".encode(), if_match=tag):
                return attempt
        raise AssertionError("no swap succeeded")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(8)))
    entries = store.read_document("docs/list").decode().rstrip(";").split(";")
    assert sorted(int(entry) for entry in entries) == list(range(8))


def test_streaming_a_blob_in(store: ArtifactStore):
    chunks = [os.urandom(100_000) for _ in range(7)]
    with store.blob_writer() as writer:
        for chunk in chunks:
            writer.write(chunk)
        assert writer.tell() == 700_000
        blob = writer.commit()
    assert blob.digest == digest_of(b"".join(chunks))
    assert blob.size == 700_000
    assert store.get_bytes(blob.digest) == b"".join(chunks)
    with pytest.raises(ValueError):
        writer.write(b"after the commit")


def test_a_writer_left_without_commit_stores_nothing(store: ArtifactStore):
    with pytest.raises(RuntimeError), store.blob_writer() as writer:
        writer.write(b"half of a value")
        raise RuntimeError("the serializer failed")
    assert blob_keys(store) == []
    assert not store.exists(digest_of(b"half of a value"))
    with store.blob_writer() as writer:
        writer.write(b"closed, never committed")
    assert blob_keys(store) == []
    if isinstance(store, LocalArtifactStore):
        assert list((store.root / "tmp").iterdir()) == []


def test_reading_a_blob_as_a_verified_stream_and_path(store: ArtifactStore):
    data = os.urandom(3 * MIB)
    blob = store.put_bytes(data)
    with store.open_blob(blob.digest) as reader:
        assert reader.read(10) == data[:10]
        reader.verify()  # reads the rest
    with store.blob_path(blob.digest) as path:
        assert path.read_bytes() == data
    overwrite_blob(store, blob.digest, data[:-1] + b"!")
    with store.open_blob(blob.digest) as reader, pytest.raises(DigestMismatchError, match=blob.digest):
        reader.verify()
    with pytest.raises(DigestMismatchError, match="corrupted"), store.blob_path(blob.digest):
        pass
