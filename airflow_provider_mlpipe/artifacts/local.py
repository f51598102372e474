"""The artifact store in a local (or shared, POSIX) folder.

Writing a blob is one pass over its bytes: they are hashed as they are written to a temp file under
``tmp/`` (same file system), which is fsynced and then *linked* to its content address, never copied.
``os.link`` refuses to replace an existing file, which makes blob writes and create-only document
writes atomic and safe with many concurrent processes.

Every temp file is held under an exclusive ``flock`` by its writer. A writer that dies (killed, out
of disk) leaves its temp file unlocked, and the next write removes it: a lock that can be taken means
nobody is writing that file any more, so no live writer's file is ever removed.

Reading verifies: a blob is hashed before its bytes are used (see :meth:`LocalArtifactStore.map_blob`
and :meth:`LocalArtifactStore.blob_path`), so a blob corrupted on disk is an error, never an input.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from airflow_provider_mlpipe.artifacts.store import (
    CHUNK_SIZE,
    RESERVED_TOP_LEVEL,
    ArtifactNotFoundError,
    ArtifactStore,
    BlobReader,
    BlobWriter,
    DigestMismatchError,
    UnfinishedWrite,
    blob_key,
    check_document_key,
    check_document_prefix,
    corrupted_message,
)
from airflow_provider_mlpipe.exceptions import ArtifactError

EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()
# Prefix of the temp files under tmp/: blobs and documents being written.
TEMP_PREFIX = "w-"


def _fsync_directory(path: Path) -> None:
    """Make a new directory entry durable; best effort (not every platform can open a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_file(fd: int, path: str | Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_ino, named.st_dev) == (opened.st_ino, opened.st_dev)


def hash_mapped(view: memoryview) -> str:
    """``"sha256:<hex>"`` of a mapped (or any) buffer, fed to the hash in chunks."""
    hasher = hashlib.sha256()
    for start in range(0, len(view), CHUNK_SIZE):
        hasher.update(view[start : start + CHUNK_SIZE])
    return "sha256:" + hasher.hexdigest()


class LocalArtifactStore(ArtifactStore):
    """A store in a local (or shared, POSIX) folder.

    :param root: the store's folder; created on the first write, not before.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    # -- temp files ----------------------------------------------------------------------------
    def new_temp_file(self) -> tuple[int, str]:
        """A new temp file under ``tmp/``, open for writing and locked by this process: ``(fd, path)``.

        Stale temp files of dead writers are removed first.
        """
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        self.remove_stale_temp_files()
        while True:
            fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweep may have taken the file for a dead writer's between mkstemp and flock: then
            # its name is gone, and this writer starts again with a new one.
            if _same_file(fd, name):
                return fd, name
            os.close(fd)

    def remove_unfinished_writes(self, started_before: datetime) -> list[UnfinishedWrite]:
        """The temp files of writers that are gone, whatever their age (see :meth:`remove_stale_temp_files`)."""
        return [UnfinishedWrite(str(self.root / "tmp" / name)) for name in self.remove_stale_temp_files()]

    def remove_stale_temp_files(self) -> list[str]:
        """Remove the temp files whose writer is gone (their lock is free); return their names."""
        folder = self.root / "tmp"
        removed: list[str] = []
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return removed
        for name in names:
            path = folder / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue  # gone already, or not ours to open
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a live writer holds it
            try:
                if _same_file(fd, path):
                    os.unlink(path)
                    removed.append(name)
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed

    # -- blobs: writing --------------------------------------------------------------------------
    def blob_writer(self) -> BlobWriter:
        try:
            return _LocalBlobWriter(self)
        except OSError as error:
            raise ArtifactError(f"cannot write a blob to the artifact store {self.url}: {error}") from error

    def publish(self, temp_name: str, digest: str) -> None:
        """Make the finished, fsynced temp file the blob ``digest`` (a link, never a copy)."""
        final = self._path(blob_key(digest))
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temp_name, final)
        except FileExistsError:
            pass  # another writer stored the same content first: nothing to do
        except OSError:
            # A file system without hard links: rename instead. Only done when the blob is absent,
            # and a concurrent writer can only be writing the same bytes.
            if not final.exists():
                os.replace(temp_name, final)
        _fsync_directory(final.parent)

    # -- blobs: reading --------------------------------------------------------------------------
    def uri(self, digest: str) -> str:
        return self._path(blob_key(digest)).as_uri()

    def exists(self, digest: str) -> bool:
        return self._path(blob_key(digest)).is_file()

    def _open(self, digest: str) -> IO[bytes]:
        path = self._path(blob_key(digest))
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"no blob {digest} in the artifact store {self.url}") from None
        except OSError as error:
            raise ArtifactError(f"cannot read blob {path}: {error}") from error

    def open_blob(self, digest: str) -> BlobReader:
        return BlobReader(self._open(digest), digest, self.uri(digest))

    def map_blob(self, digest: str) -> mmap.mmap | bytes:
        """The blob as a private, copy-on-write memory map, verified: no copy of the bytes is made.

        The map is hashed once (which also brings its pages in); a write to it changes this
        process's pages only, never the blob.

        :param digest: ``"sha256:<hex>"``.
        :raises ArtifactNotFoundError: no such blob.
        :raises DigestMismatchError: the blob's content does not match its digest.
        """
        with self._open(digest) as stream:
            size = os.fstat(stream.fileno()).st_size
            if size == 0:  # mmap cannot map an empty file
                actual = EMPTY_DIGEST
                mapped: mmap.mmap | bytes = b""
            else:
                mapped = mmap.mmap(stream.fileno(), size, access=mmap.ACCESS_COPY)
                with contextlib.suppress(AttributeError, OSError):
                    mapped.madvise(mmap.MADV_WILLNEED)
                actual = hash_mapped(memoryview(mapped))
        if actual != digest:
            if isinstance(mapped, mmap.mmap):
                mapped.close()
            raise DigestMismatchError(corrupted_message(self.uri(digest), digest, actual))
        return mapped

    @contextlib.contextmanager
    def blob_path(self, digest: str) -> Iterator[Path]:
        with self.open_blob(digest) as reader:
            reader.verify()
        yield self._path(blob_key(digest))

    def get_file(self, digest: str, destination: Path) -> Path:
        # The kernel copies (copy_file_range: a reflink on file systems that have them), then the
        # copy itself is hashed: what the step will read is what was verified.
        uri = self.uri(digest)
        with self._open(digest) as source, self._temp_next_to(destination) as (output, temp_name):
            if not _kernel_copy(source, output):
                source.seek(0)
                output.seek(0)
                output.truncate()
                shutil.copyfileobj(source, output, CHUNK_SIZE)
            output.flush()
            with open(temp_name, "rb", buffering=0) as copy:
                BlobReader(copy, digest, uri).verify()
        return destination

    # -- documents -------------------------------------------------------------------------------
    def write_document(
        self, key: str, data: bytes, *, create_only: bool = False, if_match: str | None = None
    ) -> bool:
        path = self._path(check_document_key(key))
        if create_only and if_match is not None:
            raise ArtifactError(f"document {key!r}: create_only and if_match exclude each other")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = self.new_temp_file()
        except OSError as error:
            raise ArtifactError(f"cannot write document {key!r} in {self.url}: {error}") from error
        try:
            with os.fdopen(fd, "wb") as output:
                output.write(data)
                output.flush()
                os.fsync(output.fileno())
                os.fchmod(output.fileno(), 0o644)
                if create_only:
                    try:
                        os.link(temp_name, path)
                    except FileExistsError:
                        return False
                else:
                    with _locked_current(path) as current:
                        if if_match is not None and (current is None or _tag(current) != if_match):
                            return False
                        os.replace(temp_name, path)
            _fsync_directory(path.parent)
            return True
        except OSError as error:
            raise ArtifactError(f"cannot write document {key!r} in {self.url}: {error}") from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)

    def read_document_tagged(self, key: str) -> tuple[bytes, str]:
        path = self._path(check_document_key(key))
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactNotFoundError(f"no document {key!r} in the artifact store {self.url}") from None
        except OSError as error:
            raise ArtifactError(f"cannot read document {key!r} in {self.url}: {error}") from error
        return data, _tag(data)

    def delete_document(self, key: str) -> bool:
        path = self._path(check_document_key(key))
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as error:
            raise ArtifactError(f"cannot delete document {key!r} in {self.url}: {error}") from error
        return True

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
                    continue  # not a document (documents never start with ".")
                key = f"{relative}/{name}" if relative else name
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class _LocalBlobWriter(BlobWriter):
    """Writes to a locked temp file under ``tmp/``; commit fsyncs it and links it into place."""

    def __init__(self, store: LocalArtifactStore) -> None:
        super().__init__(store)
        self._local = store
        fd, self._temp_name = store.new_temp_file()
        self._file = open(fd, "wb", buffering=1024 * 1024)  # noqa: SIM115 (closed by commit or discard)

    def _write_raw(self, data: memoryview) -> None:
        self._file.write(data)

    def _commit(self, digest: str) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            # Read-only: a blob is immutable, and a stray write from a tool should fail loudly.
            os.fchmod(self._file.fileno(), 0o444)
            self._local.publish(self._temp_name, digest)
        except OSError as error:
            raise ArtifactError(
                f"cannot write blob {digest} to the artifact store {self.store.url}: {error}"
            ) from error
        self._discard()

    def _discard(self) -> None:
        # Unlink before closing: the lock is held until the name is gone.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp_name)
        with contextlib.suppress(OSError):
            self._file.close()


@contextlib.contextmanager
def _locked_current(path: Path) -> Iterator[bytes | None]:
    """Lock the document's current file and yield its content (None if there is no document).

    The lock is taken on the file itself, and a writer replaces the file (a new inode): whoever
    waited for the lock of a replaced file sees that its path names another file, and looks again.
    Read-modify-write under this lock is a compare-and-swap without any extra lock file.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                with open(fd, "rb", closefd=False) as stream:
                    content = stream.read()
                yield content
                return
        finally:
            os.close(fd)


def _tag(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _kernel_copy(source: IO[bytes], output: IO[bytes]) -> bool:
    """Copy ``source`` to ``output`` inside the kernel; False where that is not possible."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is None:
        return False
    size = os.fstat(source.fileno()).st_size
    offset = 0
    try:
        while offset < size:
            copied = copy_range(source.fileno(), output.fileno(), size - offset, offset, offset)
            if copied == 0:
                break
            offset += copied
    except OSError:
        return False  # another file system, or no support: the caller copies in user space
    return offset == size
