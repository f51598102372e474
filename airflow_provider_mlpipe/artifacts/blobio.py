"""Blob streams: writing a new blob while hashing it, reading a blob while hashing it.

:class:`BlobWriter` is what every store's ``blob_writer()`` returns; :class:`BlobReader` what its
``open_blob()`` returns. Both hash on the way, so a blob costs one pass over its bytes each way.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.store import ArtifactStore

CHUNK_SIZE = 8 * 1024 * 1024
# Chunks at least this large are hashed and written in parallel (see BlobWriter.write).
PARALLEL_MIN_BYTES = 1024 * 1024


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


class DigestMismatchError(ArtifactError):
    """The bytes read from the store do not match their digest: the blob is corrupted or truncated."""


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
