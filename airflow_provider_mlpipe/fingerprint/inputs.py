"""Content digests of a step's literal inputs: local files and folders, and S3 objects and prefixes.

A file's digest is the sha256 of its bytes (what ``sha256sum`` prints), a folder's or an S3 prefix's
the sha256 of a manifest of its files (relative path, digest, size), the same form as a directory
artifact in the store. Hashing a large file is done once: the digest is remembered with what
identifies that version of the file, and looked up again by that alone:

- a local file by its real path, size, mtime, ctime and inode, in ``$AIRFLOW_HOME/mlpipe/digests/``
  (one small JSON document per file, written atomically: files are local to a machine, and so is this
  memo);
- an S3 object by its bucket, key, ETag and size, in the artifact store (``digests/s3/...``), shared by
  every worker: a version of an object is hashed once for the whole deployment.

A changed file has another mtime/ctime (or ETag), so it is hashed again: a stale memo cannot hide a
change. No Airflow import here (S3 is reached through :mod:`airflow_provider_mlpipe.artifacts.aws`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import ArtifactError
from airflow_provider_mlpipe.files import write_whole

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.store import ArtifactStore

MANIFEST_FORMAT = 1
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ContentDigest:
    """What a literal input held: ``sha256:<hex>``, ``file`` or ``directory``, and its size in bytes."""

    digest: str
    type: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "type": self.type, "size": self.size}


def memo_folder() -> Path:
    """Where local files' digests are remembered: ``$AIRFLOW_HOME/mlpipe/digests``."""
    from airflow_provider_mlpipe.settings import airflow_home

    return airflow_home() / "mlpipe" / "digests"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_digest(files: dict[str, dict[str, Any]], folders: list[str]) -> str:
    """The digest of a folder: the sha256 of its manifest (as a directory artifact's)."""
    manifest = {"mlpipe_manifest": MANIFEST_FORMAT, "files": files, "folders": sorted(folders)}
    return "sha256:" + hashlib.sha256(_canonical(manifest)).hexdigest()


def _hash_stream(stream: Any) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


class LocalDigests:
    """Digests of local files, each remembered by its identity so that it is hashed once.

    :param folder: where to remember them (default :func:`memo_folder`); None to remember nothing.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else memo_folder()

    def _memo_path(self, real: str) -> Path:
        name = hashlib.sha256(real.encode()).hexdigest()
        return self.folder / name[:2] / f"{name}.json"

    @staticmethod
    def _identity(real: str, info: os.stat_result) -> dict[str, Any]:
        return {
            "path": real,
            "size": info.st_size,
            "mtime_ns": info.st_mtime_ns,
            "ctime_ns": info.st_ctime_ns,
            "inode": info.st_ino,
        }

    def file_digest(self, path: Path) -> tuple[str, int]:
        """``(sha256:<hex>, size)`` of a file, from the memo when the file is the same version."""
        real = os.path.realpath(path)
        info = os.stat(real)
        identity = self._identity(real, info)
        memo = self._memo_path(real)
        with contextlib.suppress(OSError, ValueError):
            remembered = json.loads(memo.read_text())
            if {key: remembered.get(key) for key in identity} == identity:
                return str(remembered["digest"]), info.st_size
        with open(real, "rb", buffering=0) as stream:
            digest, size = _hash_stream(stream)
        self._remember(memo, {**identity, "digest": digest})
        return digest, size

    def _remember(self, memo: Path, document: dict[str, Any]) -> None:
        # A memo is a convenience: a read-only or full disk must not fail the step or the parse.
        with contextlib.suppress(OSError):
            write_whole(memo, json.dumps(document).encode())

    def digest(self, path: Path) -> ContentDigest:
        """The content digest of a local file or folder.

        :raises FileNotFoundError: nothing is there.
        """
        if path.is_file():
            digest, size = self.file_digest(path)
            return ContentDigest(digest, "file", size)
        if not path.is_dir():
            raise FileNotFoundError(f"no file or folder at {path}")
        files: dict[str, dict[str, Any]] = {}
        folders: list[str] = []
        total = 0
        for relative, full in _walk(path):
            if full is None:
                folders.append(relative)
                continue
            digest, size = self.file_digest(full)
            executable = bool(full.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
            files[relative] = {"digest": digest, "size": size, "mode": 0o755 if executable else 0o644}
            total += size
        return ContentDigest(manifest_digest(files, folders), "directory", total)


def _walk(root: Path) -> Iterator[tuple[str, Path | None]]:
    """(relative path, file) for each file and (relative path, None) for each folder, sorted."""
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        relative_folder = Path(folder).relative_to(root)
        for name in dirnames:
            yield (relative_folder / name).as_posix(), None
        for name in sorted(filenames):
            yield (relative_folder / name).as_posix(), Path(folder) / name


def s3_digest(url: str, *, store: ArtifactStore | None, aws_conn_id: str | None = None) -> ContentDigest:
    """The content digest of the S3 object ``url``, or of every object under it (a prefix).

    Each object's sha256 is remembered in ``store`` by bucket, key, ETag and size, so a version of an
    object is downloaded and hashed once; ``store`` None remembers nothing.

    :raises ArtifactError: the objects cannot be listed or read, or there are none.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_provider_mlpipe.artifacts.aws import s3_client

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = s3_client(aws_conn_id)
    objects: list[tuple[str, str, int]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    objects.append((item["Key"], str(item.get("ETag", "")), int(item.get("Size", 0))))
        if not objects:
            raise ArtifactError(f"input {url!r}: no object found under that prefix")

        def object_digest(key: str, etag: str, size: int) -> str:
            memo_key = "digests/s3/" + hashlib.sha256(f"{bucket}\0{key}\0{etag}\0{size}".encode()).hexdigest()
            if store is not None:
                with contextlib.suppress(Exception):
                    return str(json.loads(store.read_document(memo_key))["digest"])
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                digest, _ = _hash_stream(body)
            finally:
                body.close()
            if store is not None:
                with contextlib.suppress(ArtifactError):
                    store.write_document(
                        memo_key, _canonical({"url": f"s3://{bucket}/{key}", "digest": digest})
                    )
            return digest

        if len(objects) == 1 and objects[0][0] == prefix:
            key, etag, size = objects[0]
            return ContentDigest(object_digest(key, etag, size), "file", size)
        files = {}
        for key, etag, size in objects:
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            files[relative] = {"digest": object_digest(key, etag, size), "size": size, "mode": 0o644}
        return ContentDigest(manifest_digest(files, []), "directory", sum(size for _, _, size in objects))
    except (ClientError, BotoCoreError) as error:
        raise ArtifactError(f"cannot read input {url}: {error}") from error


def location_digest(
    location: str,
    *,
    base_dir: Path | None,
    store: ArtifactStore | None = None,
    aws_conn_id: str | None = None,
    local: LocalDigests | None = None,
) -> ContentDigest:
    """The content digest of an input location (a path relative to ``base_dir``, ``file://`` or ``s3://``).

    :raises FileNotFoundError: a local path with nothing there.
    :raises ArtifactError: an S3 location that cannot be read.
    """
    if location.startswith("s3://"):
        return s3_digest(location, store=store, aws_conn_id=aws_conn_id)
    return (local or LocalDigests()).digest(local_path(location, base_dir))


def local_path(location: str, base_dir: Path | None) -> Path:
    """The local path of a location as a step stages it."""
    path = Path(location.removeprefix("file://")).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path
