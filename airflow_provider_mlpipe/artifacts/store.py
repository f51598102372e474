"""Artifact stores: a local folder or an S3 prefix holding immutable blobs and small named documents.

Layout under the store's root (the same for both implementations)::

    objects/sha256/<2 hex>/<64 hex>   blobs, content addressed, written once, never overwritten
    tmp/                              local store only: blobs being written (same file system)
    <document key>                    small mutable documents, e.g. registry/<group>/00000001.json

Blobs are identified by ``"sha256:<hex>"`` of their bytes; writing the same bytes twice stores them
once. Every read checks the bytes against the digest, so a corrupted or truncated blob is an error,
never a silently wrong input.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from airflow_provider_mlpipe.artifacts.reference import check_digest
from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

CHUNK_SIZE = 1024 * 1024
# Top-level names used by the store itself: document keys may not start with them.
RESERVED_TOP_LEVEL = frozenset({"objects", "tmp"})
# Letters, digits and a few safe punctuation marks; never starting with "." (so no "." or "..", and
# no clash with the hidden temp files written next to documents).
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+@-]*")
_MAX_KEY_LENGTH = 1024


class ArtifactNotFoundError(ArtifactError):
    """The store has no blob with that digest, or no document with that key."""


class DigestMismatchError(ArtifactError):
    """The bytes read from the store do not match their digest: the blob is corrupted or truncated."""


@dataclass(frozen=True)
class StoredBlob:
    """What a blob write returns.

    :param digest: ``"sha256:<hex>"`` of the bytes.
    :param size: number of bytes.
    :param uri: where the blob is (``file:///...`` or ``s3://...``).
    """

    digest: str
    size: int
    uri: str


def blob_key(digest: str) -> str:
    """The key of a blob, relative to the store root: ``objects/sha256/ab/abcdef...``.

    The two-character shard keeps any one folder small on a local file system.

    :param digest: ``"sha256:<hex>"``.
    """
    hexdigest = check_digest(digest).removeprefix("sha256:")
    return f"objects/sha256/{hexdigest[:2]}/{hexdigest}"


def check_document_key(key: str) -> str:
    """Return ``key`` if it is a safe document key, else raise ArtifactError.

    A key is ``/``-separated segments of letters, digits and ``_.=+@-``, none starting with ``.``:
    no ``..``, no absolute path, no backslash, so a key can never name a file outside the store's
    root. Keys under ``objects/`` and ``tmp/`` belong to the store itself.

    :param key: e.g. ``registry/abalone/00000001.json``.
    """
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY_LENGTH:
        raise ArtifactError(f"invalid document key {key!r}: expected a non-empty string")
    segments = key.split("/")
    if not all(_KEY_SEGMENT.fullmatch(segment) for segment in segments):
        raise ArtifactError(
            f"invalid document key {key!r}: use '/'-separated names of letters, digits and '_.=+@-' "
            "(no '..', no leading '/' or '.', no backslash)"
        )
    if segments[0] in RESERVED_TOP_LEVEL:
        raise ArtifactError(f"invalid document key {key!r}: {segments[0]}/ is reserved for the store's blobs")
    return key


def check_document_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is empty or the start of a safe document key, else raise ArtifactError.

    :param prefix: e.g. ``registry/`` or ``registry/aba``.
    """
    if prefix == "":
        return prefix
    # "registry/" ends with an empty segment, which a key may not: check it as if it were complete.
    check_document_key(prefix + "x" if prefix.endswith("/") else prefix)
    return prefix


def sha256_file(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", size)`` of a file, read in chunks (never all in memory).

    :param path: the file.
    """
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _fsync_directory(path: Path) -> None:
    """Make a new directory entry durable; best effort (not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ArtifactStore(ABC):
    """Immutable content-addressed blobs plus small mutable documents, under one root.

    Subclasses provide the storage primitives; reading and digest checking are shared here.
    """

    #: The store's URL, as accepted by :func:`store_from_url`.
    url: str

    # -- blobs -------------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store ``data`` as a blob (once: existing content is not written again).

        :param data: the bytes.
        """
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._write_blob_bytes(digest, data)
        return StoredBlob(digest, len(data), self.uri(digest))

    @abstractmethod
    def put_file(self, path: Path) -> StoredBlob:
        """Store the content of the file ``path`` as a blob, streaming it (large files are fine).

        :param path: a regular file.
        """

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, checked against ``digest``.

        :param digest: ``"sha256:<hex>"``.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the stored bytes do not match the digest.
        """
        hasher = hashlib.sha256()
        parts: list[bytes] = []
        with self._open_blob(digest) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
                parts.append(chunk)
        self._check(digest, hasher)
        return b"".join(parts)

    def get_file(self, digest: str, destination: Path) -> Path:
        """Copy a blob to the local file ``destination`` (replaced if present) and return it.

        The copy is written next to ``destination`` and renamed into place only once its digest
        checked out, so ``destination`` never holds partial or corrupted content.

        :param digest: ``"sha256:<hex>"``.
        :param destination: the file to write; its folder is created if needed.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the stored bytes do not match the digest.
        """
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=".mlpipe-tmp-")
        except OSError as error:
            raise ArtifactError(f"cannot write {destination}: {error}") from error
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as output, self._open_blob(digest) as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    output.write(chunk)
            self._check(digest, hasher)
            # mkstemp creates the file 0600; a staged input should be readable like any other file.
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, destination)
        except OSError as error:
            raise ArtifactError(f"cannot write {destination}: {error}") from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)  # still there only if something failed
        return destination

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether the store has the blob ``digest``.

        :param digest: ``"sha256:<hex>"``.
        """

    @abstractmethod
    def uri(self, digest: str) -> str:
        """Where the blob ``digest`` is (or would be): ``file:///...`` or ``s3://bucket/key``.

        :param digest: ``"sha256:<hex>"``.
        """

    @abstractmethod
    def _open_blob(self, digest: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream of the blob; raise ArtifactNotFoundError if it is missing."""

    @abstractmethod
    def _write_blob_bytes(self, digest: str, data: bytes) -> None:
        """Write a blob that was not found, atomically and without replacing an existing one."""

    def _check(self, digest: str, hasher: Any) -> None:
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatchError(
                f"blob {self.uri(digest)} is corrupted: its content has digest {actual}, expected {digest}. "
                "Delete it; the next run that produces this content writes it again."
            )

    # -- documents -----------------------------------------------------------------------------
    @abstractmethod
    def write_document(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        """Write the document ``key`` atomically; return whether it was written.

        :param key: a safe key (see :func:`check_document_key`).
        :param data: the new content.
        :param create_only: only write if ``key`` does not exist yet, and return False if it does.
            Two concurrent create-only writers of one key: exactly one gets True.
        """

    @abstractmethod
    def read_document(self, key: str) -> bytes:
        """The content of the document ``key``.

        :param key: a safe key.
        :raises ArtifactNotFoundError: no such document.
        """

    @abstractmethod
    def list_documents(self, prefix: str = "") -> list[str]:
        """The keys of the documents starting with ``prefix``, sorted; blobs are not listed.

        :param prefix: e.g. ``registry/`` (a plain string prefix, as in S3).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class LocalArtifactStore(ArtifactStore):
    """A store in a local (or shared, POSIX) folder.

    Writes go to a temp file on the same file system, are fsynced, then linked into place:
    ``os.link`` fails instead of replacing an existing file, which makes blob writes and
    create-only document writes atomic and safe with many concurrent processes.

    :param root: the store's folder; created on the first write, not before.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    # -- blobs -------------------------------------------------------------------------------
    def uri(self, digest: str) -> str:
        return self._path(blob_key(digest)).as_uri()

    def exists(self, digest: str) -> bool:
        return self._path(blob_key(digest)).is_file()

    def _open_blob(self, digest: str) -> AbstractContextManager[IO[bytes]]:
        path = self._path(blob_key(digest))
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"no blob {digest} in the artifact store {self.url}") from None
        except OSError as error:
            raise ArtifactError(f"cannot read blob {path}: {error}") from error

    def _write_blob_bytes(self, digest: str, data: bytes) -> None:
        try:
            self._write_blob(lambda output: output.write(data), digest)
        except OSError as error:
            raise ArtifactError(f"cannot write blob {digest} in {self.url}: {error}") from error

    def put_file(self, path: Path) -> StoredBlob:
        hasher = hashlib.sha256()
        size = 0

        def copy(output: IO[bytes]) -> None:
            nonlocal size
            with open(path, "rb") as source:
                while chunk := source.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    output.write(chunk)
                    size += len(chunk)

        # One pass: copy and hash together, then link under the digest learnt on the way.
        try:
            digest = self._write_blob(copy, None, hasher)
        except OSError as error:
            raise ArtifactError(f"cannot store file {path}: {error}") from error
        return StoredBlob(digest, size, self.uri(digest))

    def _write_blob(self, fill: Callable[[IO[bytes]], object], digest: str | None, hasher: Any = None) -> str:
        """Write a temp file with ``fill``, then link it to its blob path; return the digest."""
        temp_folder = self.root / "tmp"
        temp_folder.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=temp_folder, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as output:
                fill(output)
                output.flush()
                os.fsync(output.fileno())
            if digest is None:
                digest = "sha256:" + hasher.hexdigest()
            # Read-only: a blob is immutable, and a stray write from a tool should fail loudly.
            os.chmod(temp_name, 0o444)
            final = self._path(blob_key(digest))
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(temp_name, final)
            except FileExistsError:
                pass  # another writer stored the same content first: nothing to do
            except OSError:
                # A file system without hard links: rename instead. Only done when the blob is
                # absent, and a concurrent writer can only be writing the same bytes.
                if not final.exists():
                    os.replace(temp_name, final)
            _fsync_directory(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
        return digest

    # -- documents -----------------------------------------------------------------------------
    def write_document(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        path = self._path(check_document_key(key))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A hidden temp file in the same folder: atomic rename/link, and never listed as a key.
            fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError as error:
            raise ArtifactError(f"cannot write document {key!r} in {self.url}: {error}") from error
        try:
            with os.fdopen(fd, "wb") as output:
                output.write(data)
                output.flush()
                os.fsync(output.fileno())
            os.chmod(temp_name, 0o644)
            if create_only:
                try:
                    os.link(temp_name, path)
                except FileExistsError:
                    return False
            else:
                os.replace(temp_name, path)
            _fsync_directory(path.parent)
            return True
        except OSError as error:
            raise ArtifactError(f"cannot write document {key!r} in {self.url}: {error}") from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)

    def read_document(self, key: str) -> bytes:
        path = self._path(check_document_key(key))
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactNotFoundError(f"no document {key!r} in the artifact store {self.url}") from None
        except OSError as error:
            raise ArtifactError(f"cannot read document {key!r} in {self.url}: {error}") from error

    def list_documents(self, prefix: str = "") -> list[str]:
        check_document_prefix(prefix)
        folder_key = prefix.rpartition("/")[0]
        base = self._path(folder_key) if folder_key else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            relative = Path(dirpath).relative_to(self.root).as_posix()
            if relative == ".":
                relative = ""
                dirnames[:] = [name for name in dirnames if name not in RESERVED_TOP_LEVEL]
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            for name in filenames:
                if name.startswith("."):
                    continue  # a temp file of a write in progress
                key = f"{relative}/{name}" if relative else name
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class S3ArtifactStore(ArtifactStore):
    """A store under ``s3://bucket/prefix``.

    A PUT is atomic in S3: readers see the old object, or the new one, never a part. Blob writes
    and create-only document writes are conditional (``If-None-Match: *``), so S3 itself refuses
    to replace an existing object, even with concurrent writers.

    :param bucket: the bucket (it must exist).
    :param prefix: the key prefix of the store's root, without leading or trailing ``/``.
    :param client: a boto3 S3 client to use; by default one is created on first use (the
        ``AWS_*`` environment, including ``AWS_ENDPOINT_URL``, is honoured by boto3).
    :param endpoint_url: the S3 endpoint when creating the client (MinIO, moto, ...).
    :param multipart_threshold: files larger than this are uploaded in parts.
    :param part_size: the size of an uploaded part (S3's minimum is 5 MiB).
    """

    MIN_PART_SIZE = 5 * 1024 * 1024
    MAX_PARTS = 10_000
    CONFLICT_RETRIES = 5

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        multipart_threshold: int = 64 * 1024 * 1024,
        part_size: int = 16 * 1024 * 1024,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ArtifactError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix and not all(_KEY_SEGMENT.fullmatch(segment) for segment in prefix.split("/")):
            raise ArtifactError(f"invalid S3 prefix {prefix!r}: no '..', '.' or empty segments")
        if part_size < self.MIN_PART_SIZE:
            raise ArtifactError(f"part_size {part_size} is below S3's minimum of {self.MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled, nor can a live client: a copy in another process makes its own.
        state = self.__dict__.copy()
        del state["_lock"]
        if self._owns_client:
            state["_client"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _s3(self) -> S3Client:
        client = self._client
        if client is None:
            # Created on first use, so that importing the provider and building DAGs stay cheap;
            # the lock keeps concurrent threads from creating several clients.
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    # A session per store: boto3's default session is not thread safe.
                    self._client = boto3.session.Session().client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        config=Config(retries={"mode": "standard", "max_attempts": 5}),
                    )
                client = self._client
        return client

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- blobs -------------------------------------------------------------------------------
    def uri(self, digest: str) -> str:
        return self._where(self._key(blob_key(digest)))

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(blob_key(digest))
        try:
            self._s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise ArtifactError(f"cannot check {self._where(key)}: {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"cannot check {self._where(key)}: {error}") from error
        return True

    @contextlib.contextmanager
    def _open_blob(self, digest: str) -> Iterator[IO[bytes]]:
        key = self._key(blob_key(digest))
        body = self._get_object(key, what=f"blob {digest}")
        try:
            yield body
        finally:
            body.close()

    def _get_object(self, key: str, *, what: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._s3().get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                raise ArtifactNotFoundError(f"no {what} in the artifact store {self.url}") from None
            raise ArtifactError(f"cannot read {self._where(key)}: {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"cannot read {self._where(key)}: {error}") from error

    def _write_blob_bytes(self, digest: str, data: bytes) -> None:
        self._put_object(
            self._key(blob_key(digest)),
            lambda: contextlib.nullcontext(data),
            create_only=True,
            checksum=_sha256_base64(digest),
        )

    def put_file(self, path: Path) -> StoredBlob:
        # The key is the digest, so the file is read twice: once to hash it, once to upload it.
        try:
            digest, size = sha256_file(path)
        except OSError as error:
            raise ArtifactError(f"cannot store file {path}: {error}") from error
        if not self.exists(digest):
            key = self._key(blob_key(digest))
            if size > self.multipart_threshold:
                self._put_multipart(key, path, size)
            else:
                # A fresh file object per attempt: a retried PUT re-reads the file from its start.
                self._put_object(
                    key, partial(open, path, "rb"), create_only=True, checksum=_sha256_base64(digest)
                )
        return StoredBlob(digest, size, self.uri(digest))

    def _put_object(
        self,
        key: str,
        body: Callable[[], AbstractContextManager[Any]],
        *,
        create_only: bool,
        checksum: str | None = None,
    ) -> bool:
        """PUT ``key``; with ``create_only``, return False if it already exists."""
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, Any] = {}
        if create_only:
            extra["IfNoneMatch"] = "*"
        if checksum is not None:
            # S3 checks the upload against our own sha256: a corrupted transfer is refused.
            extra["ChecksumSHA256"] = checksum
        for attempt in range(self.CONFLICT_RETRIES):
            try:
                with body() as content:
                    self._s3().put_object(Bucket=self.bucket, Key=key, Body=content, **extra)
                return True
            except ClientError as error:
                code = _error_code(error)
                if create_only and code in {"PreconditionFailed", "412"}:
                    return False
                # S3 answers 409 to a conditional write racing another one on the same key: retry,
                # and the retry sees the winner's object (412) or writes its own.
                if code == "ConditionalRequestConflict" and attempt + 1 < self.CONFLICT_RETRIES:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise ArtifactError(f"cannot write {self._where(key)}: {error}") from error
            except (BotoCoreError, OSError) as error:
                raise ArtifactError(f"cannot write {self._where(key)}: {error}") from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_multipart(self, key: str, path: Path, size: int) -> None:
        """Upload a large blob in parts; completed with If-None-Match, so it never replaces one."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._s3()
        part_size = max(self.part_size, -(-size // self.MAX_PARTS))
        upload_id = None
        try:
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            parts: list[CompletedPartTypeDef] = []
            with open(path, "rb") as source:
                number = 1
                while chunk := source.read(part_size):
                    response = client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": response["ETag"]})
                    number += 1
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
            upload_id = None
        except ClientError as error:
            # 412: a concurrent writer stored the same content first. 409: one is doing so now.
            if _error_code(error) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                for attempt in range(self.CONFLICT_RETRIES):
                    if self.exists(_digest_of_key(key)):
                        return
                    time.sleep(0.05 * 2**attempt)
            raise ArtifactError(f"cannot write {self._where(key)}: {error}") from error
        except (BotoCoreError, OSError) as error:
            raise ArtifactError(f"cannot write {self._where(key)}: {error}") from error
        finally:
            if upload_id is not None:
                # Parts of an unfinished upload cost storage until aborted.
                with contextlib.suppress(Exception):
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    # -- documents -----------------------------------------------------------------------------
    def write_document(self, key: str, data: bytes, *, create_only: bool = False) -> bool:
        full_key = self._key(check_document_key(key))
        return self._put_object(full_key, lambda: contextlib.nullcontext(data), create_only=create_only)

    def read_document(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError

        full_key = self._key(check_document_key(key))
        body = self._get_object(full_key, what=f"document {key!r}")
        try:
            return body.read()
        except BotoCoreError as error:
            raise ArtifactError(f"cannot read {self._where(full_key)}: {error}") from error
        finally:
            body.close()

    def list_documents(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        check_document_prefix(prefix)
        root = self._key("")
        keys = []
        try:
            paginator = self._s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(root) :]
                    # Skip blobs, and anything written by other tools that is not a valid key.
                    with contextlib.suppress(ArtifactError):
                        keys.append(check_document_key(key))
        except (ClientError, BotoCoreError) as error:
            raise ArtifactError(f"cannot list {self._where(root + prefix)}: {error}") from error
        return sorted(keys)


def _digest_of_key(key: str) -> str:
    """The digest of a blob from its (possibly prefixed) key: the inverse of :func:`blob_key`."""
    return check_digest("sha256:" + key.rpartition("/")[2])


def _sha256_base64(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest.removeprefix("sha256:"))).decode("ascii")


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def store_from_url(url: str) -> ArtifactStore:
    """The artifact store at ``url``.

    :param url: a folder (``/data/artifacts``, ``~/artifacts``), a ``file://`` URL, or
        ``s3://bucket[/prefix]``.
    :raises ArtifactError: any other URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise ArtifactError(f"invalid artifact store URL {url!r}: expected a folder, file:// or s3:// URL")
    url = url.strip()
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ArtifactError(f"invalid artifact store URL {url!r}: no bucket")
        return S3ArtifactStore(bucket, prefix)
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise ArtifactError(f"invalid artifact store URL {url!r}: expected file:///absolute/path")
        return LocalArtifactStore(unquote(parsed.path))
    # A scheme we do not know (gs://, http://...). "C:\..." is a Windows path, not a scheme.
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", url):
        raise ArtifactError(
            f"unsupported artifact store URL {url!r}: use a folder, a file:// URL or s3://bucket/prefix"
        )
    return LocalArtifactStore(url)
