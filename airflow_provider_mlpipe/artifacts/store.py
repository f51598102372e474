"""The artifact store's contract: immutable content-addressed blobs plus small mutable documents.

Layout under the store's root (the same for every implementation)::

    objects/sha256/<2 hex>/<64 hex>   blobs, content addressed, written once, never overwritten
    tmp/                              local store only: blobs being written (same file system)
    <document key>                    small mutable documents, e.g. registry/<group>/00000001.json

Blobs are identified by ``"sha256:<hex>"`` of their bytes; writing the same bytes twice stores them
once. A blob is hashed while it is written (one pass over the bytes) and verified whenever it is
read, so a corrupted or truncated blob is an error, never a silently wrong input.

The implementations live in their own modules: :mod:`.local` (a folder) and :mod:`.s3` (an S3
prefix); :func:`store_from_url` picks one. ``LocalArtifactStore`` and ``S3ArtifactStore`` can still be
imported from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from airflow_provider_mlpipe.artifacts.reference import check_digest
from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
    from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore

__all__ = [
    "CHUNK_SIZE",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "BlobReader",
    "BlobWriter",
    "DigestMismatchError",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "StoredBlob",
    "blob_key",
    "check_document_key",
    "check_document_prefix",
    "sha256_file",
    "store_from_url",
]

CHUNK_SIZE = 8 * 1024 * 1024
# Chunks at least this large are hashed and written in parallel (see BlobWriter.write).
PARALLEL_MIN_BYTES = 1024 * 1024
# Top-level names used by the store itself: document keys may not start with them.
RESERVED_TOP_LEVEL = frozenset({"objects", "tmp"})
# Letters, digits and a few safe punctuation marks; never starting with "." (so no "." or "..", and
# no clash with the hidden temp files written next to documents).
KEY_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+@-]*")
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
    if not all(KEY_SEGMENT.fullmatch(segment) for segment in segments):
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
    with open(path, "rb", buffering=0) as stream:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
            size += count
    return "sha256:" + hasher.hexdigest(), size


def corrupted_message(where: str, digest: str, actual: str) -> str:
    """The message of a DigestMismatchError: which blob, what was found, what to do."""
    return (
        f"blob {where} is corrupted: its content has digest {actual}, expected {digest}. "
        "Delete it; the next run that produces this content writes it again."
    )


class BlobWriter(io.BufferedIOBase):
    """A new blob, written as a binary stream and hashed on the way (one pass over the bytes).

    Use it as a context manager and call :meth:`commit` when everything is written; leaving the
    block without a commit (an exception, a killed serializer) discards what was written, so no
    partial blob ever becomes visible::

        with store.blob_writer() as writer:
            numpy.lib.format.write_array(writer, array)
            blob = writer.commit()

    :param store: the store the blob goes to (named in error messages).
    """

    def __init__(self, store: ArtifactStore) -> None:
        super().__init__()
        self.store = store
        self._hasher = hashlib.sha256()
        self._size = 0
        self._finished = False
        self._helper: ThreadPoolExecutor | None = None
        self.blob: StoredBlob | None = None

    # -- io ------------------------------------------------------------------------------------
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._size

    def write(self, data: Any) -> int:  # type: ignore[override]
        if self._finished:
            raise ValueError("write to a blob that was already committed or discarded")
        view = memoryview(data).cast("B")
        try:
            if len(view) >= PARALLEL_MIN_BYTES:
                # A large chunk is written by a helper thread while this one hashes it: both release
                # the GIL, so writing costs about max(write, hash) instead of their sum. The call
                # returns only when both are done, so the caller may reuse its buffer afterwards.
                if self._helper is None:
                    self._helper = ThreadPoolExecutor(1, thread_name_prefix="mlpipe-blob-write")
                written = self._helper.submit(self._write_raw, view)
                self._hasher.update(view)
                written.result()
            else:
                self._hasher.update(view)
                self._write_raw(view)
        except OSError as error:
            raise ArtifactError(
                f"cannot write a blob to the artifact store {self.store.url}: {error}"
            ) from error
        self._size += len(view)
        return len(view)

    def close(self) -> None:
        # Closing is not committing: a serializer that closes its output must not publish a blob.
        if not self._finished:
            self.discard()
        super().close()

    # -- the blob ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """The number of bytes written so far."""
        return self._size

    def commit(self) -> StoredBlob:
        """Make the written bytes a blob (atomically: whole, or not at all) and return it."""
        if self._finished:
            raise ValueError("the blob was already committed or discarded")
        self._stop_helper()
        digest = "sha256:" + self._hasher.hexdigest()
        try:
            self._commit(digest)
        except BaseException:
            self.discard()
            raise
        self._finished = True
        self.blob = StoredBlob(digest, self._size, self.store.uri(digest))
        return self.blob

    def discard(self) -> None:
        """Forget the bytes written (idempotent)."""
        if not self._finished:
            self._finished = True
            self._stop_helper()
            self._discard()

    def _stop_helper(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- for implementations -----------------------------------------------------------------
    @abstractmethod
    def _write_raw(self, data: memoryview) -> None:
        """Append ``data`` to the pending blob."""

    @abstractmethod
    def _commit(self, digest: str) -> None:
        """Store the pending bytes as the blob ``digest`` (nothing to do if it exists already)."""

    @abstractmethod
    def _discard(self) -> None:
        """Remove whatever the pending blob left behind."""


class BlobReader(io.RawIOBase):
    """A blob read as a stream and hashed on the way; :meth:`verify` says whether it was intact.

    The bytes read are not checked until :meth:`verify`: a caller builds its value from the stream,
    then calls :meth:`verify` before handing the value on.

    :param raw: the underlying binary stream.
    :param digest: the expected digest.
    :param where: the blob's URI, for error messages.
    """

    def __init__(self, raw: Any, digest: str, where: str) -> None:
        super().__init__()
        self._raw = raw
        self.digest = digest
        self.where = where
        self._hasher = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = self._raw.readinto(view) if hasattr(self._raw, "readinto") else None
        if count is None:
            chunk = self._raw.read(len(view))
            count = len(chunk)
            view[:count] = chunk
        self._hasher.update(view[:count])
        self.size += count
        return count

    def readall(self) -> bytes:
        # RawIOBase reads 8 KiB at a time; a blob read whole is read in large chunks.
        parts = bytearray()
        while chunk := self.read(1024 * 1024):
            parts += chunk
        return bytes(parts)

    def verify(self) -> None:
        """Read what is left and check the digest of everything read.

        :raises DigestMismatchError: the blob's content does not match its digest.
        """
        buffer = bytearray(64 * 1024)
        while self.readinto(buffer):
            pass
        actual = "sha256:" + self._hasher.hexdigest()
        if actual != self.digest:
            raise DigestMismatchError(corrupted_message(self.where, self.digest, actual))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


class ArtifactStore(ABC):
    """Immutable content-addressed blobs plus small mutable documents, under one root.

    Blobs: :meth:`blob_writer` (stream a new blob), :meth:`put_bytes`, :meth:`put_file`;
    :meth:`open_blob` (stream it, verify at the end), :meth:`blob_path` (a verified local file),
    :meth:`get_bytes`, :meth:`get_file`. Documents: :meth:`write_document` (atomic, optionally
    create-only or compare-and-swap), :meth:`read_document`, :meth:`list_documents`.
    """

    #: The store's URL, as accepted by :func:`store_from_url`.
    url: str

    # -- blobs: writing ------------------------------------------------------------------------
    @abstractmethod
    def blob_writer(self) -> BlobWriter:
        """A new blob to write as a stream; see :class:`BlobWriter`."""

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store ``data`` as a blob (once: existing content is not written again).

        :param data: the bytes.
        """
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return StoredBlob(digest, len(data), self.uri(digest))
        with self.blob_writer() as writer:
            writer.write(data)
            return writer.commit()

    def put_file(self, path: Path) -> StoredBlob:
        """Store the content of the file ``path`` as a blob, streaming it (large files are fine).

        :param path: a regular file.
        """
        try:
            with open(path, "rb", buffering=0) as source, self.blob_writer() as writer:
                buffer = bytearray(CHUNK_SIZE)
                view = memoryview(buffer)
                while count := source.readinto(buffer):
                    writer.write(view[:count])
                return writer.commit()
        except OSError as error:
            raise ArtifactError(f"cannot store file {path} in {self.url}: {error}") from error

    # -- blobs: reading ------------------------------------------------------------------------
    @abstractmethod
    def open_blob(self, digest: str) -> BlobReader:
        """The blob as a stream, hashed while read; call :meth:`BlobReader.verify` before using
        what was read.

        :param digest: ``"sha256:<hex>"``.
        :raises ArtifactNotFoundError: no such blob.
        """

    @abstractmethod
    def blob_path(self, digest: str) -> AbstractContextManager[Path]:
        """A local file holding the blob's verified content, valid inside the ``with`` block.

        The local store gives the blob file itself (read-only; verified by hashing it), the S3 store
        a temporary download (verified while downloading, deleted afterwards).

        :param digest: ``"sha256:<hex>"``.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the stored bytes do not match the digest.
        """

    def map_blob(self, digest: str) -> Any | None:
        """The blob's verified bytes mapped in memory without a copy, where the store is local.

        :param digest: ``"sha256:<hex>"``.
        :returns: a buffer (see :meth:`.local.LocalArtifactStore.map_blob`), or None: this store
            cannot map, use :meth:`open_blob`.
        """
        return None

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, checked against ``digest`` (for small blobs: it is all in memory).

        :param digest: ``"sha256:<hex>"``.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the stored bytes do not match the digest.
        """
        with self.open_blob(digest) as reader:
            data = reader.read()
            reader.verify()
        return data

    def get_file(self, digest: str, destination: Path) -> Path:
        """Copy a blob to the local file ``destination`` (replaced if present) and return it.

        The copy is written next to ``destination`` and renamed into place only once its digest
        checked out, so ``destination`` never holds partial or corrupted content.

        :param digest: ``"sha256:<hex>"``.
        :param destination: the file to write; its folder is created if needed.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the stored bytes do not match the digest.
        """
        check_digest(digest)
        with self._temp_next_to(destination) as (output, temp_name), self.open_blob(digest) as reader:
            shutil.copyfileobj(reader, output, CHUNK_SIZE)
            reader.verify()
        return destination

    @contextlib.contextmanager
    def _temp_next_to(self, destination: Path) -> Iterator[tuple[IO[bytes], str]]:
        """A temp file next to ``destination``, renamed to it if the block succeeds, else removed."""
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=".mlpipe-tmp-")
        except OSError as error:
            raise ArtifactError(f"cannot write {destination}: {error}") from error
        try:
            with os.fdopen(fd, "wb") as output:
                yield output, temp_name
            # mkstemp creates the file 0600; a staged input should be readable like any other file.
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, destination)
        except OSError as error:
            raise ArtifactError(f"cannot write {destination}: {error}") from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)  # still there only if something failed

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

    # -- documents -----------------------------------------------------------------------------
    @abstractmethod
    def write_document(
        self, key: str, data: bytes, *, create_only: bool = False, if_match: str | None = None
    ) -> bool:
        """Write the document ``key`` atomically; return whether it was written.

        :param key: a safe key (see :func:`check_document_key`).
        :param data: the new content.
        :param create_only: only write if ``key`` does not exist yet, and return False if it does.
            Two concurrent create-only writers of one key: exactly one gets True.
        :param if_match: only write if the document is still the version with this tag (from
            :meth:`read_document_tagged`), and return False if it changed: a compare-and-swap.
        """

    @abstractmethod
    def read_document_tagged(self, key: str) -> tuple[bytes, str]:
        """The content of the document ``key`` and a tag of this version, for ``if_match``.

        :param key: a safe key.
        :raises ArtifactNotFoundError: no such document.
        """

    def read_document(self, key: str) -> bytes:
        """The content of the document ``key``.

        :param key: a safe key.
        :raises ArtifactNotFoundError: no such document.
        """
        return self.read_document_tagged(key)[0]

    @abstractmethod
    def list_documents(self, prefix: str = "") -> list[str]:
        """The keys of the documents starting with ``prefix``, sorted; blobs are not listed.

        :param prefix: e.g. ``registry/`` (a plain string prefix, as in S3).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def store_from_url(url: str, *, aws_conn_id: str | None = None) -> ArtifactStore:
    """The artifact store at ``url``.

    :param url: a folder (``/data/artifacts``, ``~/artifacts``), a ``file://`` URL, or
        ``s3://bucket[/prefix]``.
    :param aws_conn_id: for S3, the Airflow connection with the credentials, endpoint and region;
        by default ``[mlpipe] aws_conn_id``, else ``aws_default`` (see :mod:`.aws`).
    :raises ArtifactError: any other URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise ArtifactError(f"invalid artifact store URL {url!r}: expected a folder, file:// or s3:// URL")
    url = url.strip()
    if url.startswith("s3://"):
        from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ArtifactError(f"invalid artifact store URL {url!r}: no bucket")
        return S3ArtifactStore(bucket, prefix, aws_conn_id=aws_conn_id)

    from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore

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


def __getattr__(name: str) -> Any:
    # The implementations moved to their own modules; importing them from here still works, lazily,
    # so that this module (imported by every step) does not import them.
    if name == "LocalArtifactStore":
        from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore

        return LocalArtifactStore
    if name == "S3ArtifactStore":
        from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
