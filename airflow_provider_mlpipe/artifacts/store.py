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
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from airflow_provider_mlpipe.artifacts.blobio import (
    CHUNK_SIZE,
    BlobReader,
    BlobWriter,
    DigestMismatchError,
    StoredBlob,
    corrupted_message,
    sha256_file,
)
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
    "corrupted_message",
    "check_document_key",
    "check_document_prefix",
    "sha256_file",
    "store_from_url",
]

# Top-level names used by the store itself: document keys may not start with them.
RESERVED_TOP_LEVEL = frozenset({"objects", "tmp"})
# Letters, digits and a few safe punctuation marks; never starting with "." (so no "." or "..", and
# no clash with the hidden temp files written next to documents).
KEY_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+@-]*")
_MAX_KEY_LENGTH = 1024


class ArtifactNotFoundError(ArtifactError):
    """The store has no blob with that digest, or no document with that key."""


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
    def delete_document(self, key: str) -> bool:
        """Remove the document ``key``; return whether it was there. Blobs are never deleted.

        :param key: a safe key.
        """

    @abstractmethod
    def list_documents(self, prefix: str = "") -> list[str]:
        """The keys of the documents starting with ``prefix``, sorted; blobs are not listed.

        :param prefix: e.g. ``registry/`` (a plain string prefix, as in S3).
        """

    # -- maintenance -----------------------------------------------------------------------------
    def remove_unfinished_writes(self, started_before: datetime) -> list[UnfinishedWrite]:
        """Remove what writers that are gone left behind (``mlpipe store clean``); never a blob.

        :param started_before: only writes started before this time (where the store can tell: a
            live writer's S3 upload looks exactly like an abandoned one, so leave a margin of more
            than the longest upload).
        """
        raise ArtifactError(f"cannot clean the artifact store {self.url}: it keeps no unfinished writes")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


@dataclass(frozen=True)
class UnfinishedWrite:
    """An unfinished write that :meth:`ArtifactStore.remove_unfinished_writes` removed.

    :param where: the temp file, or the key of the S3 upload.
    :param started: when the upload started (S3); None for a local temp file.
    """

    where: str
    started: datetime | None = None


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
