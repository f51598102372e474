"""Typed serializers: Python values <-> artifacts in the store.

=========  ==============================================  ===========================
type       value                                           stored as
=========  ==============================================  ===========================
json       None, bool, int, float, str, lists and dicts    canonical JSON (sorted keys)
numpy      ``numpy.ndarray`` (not of dtype object)         ``.npy``, no pickles inside
pandas     ``pandas.DataFrame``                            parquet (pyarrow)
file       ``pathlib.Path`` to a file                      the file's bytes
directory  ``pathlib.Path`` to a folder                    one blob per file + a manifest
pickle     anything else                                   pickle; loaded only on request
=========  ==============================================  ===========================

numpy and pandas are imported only when a value needs them: building a DAG, or running a step that
handles only JSON, must not pay for importing pandas. Large values are streamed into the store
(hashed as they are written) and read back without extra copies: see :mod:`.arrays`.

A reference may carry its producer (``metadata["producer"]``: pipeline, step, output, run); an
artifact that fails its digest check is reported with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_mlpipe.artifacts.arrays import load_numpy, load_pandas, save_numpy, save_pandas
from airflow_provider_mlpipe.artifacts.reference import ArtifactRef, check_digest
from airflow_provider_mlpipe.artifacts.store import ArtifactStore, DigestMismatchError
from airflow_provider_mlpipe.exceptions import ArtifactError

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
#: The file name a value gets when :func:`materialize` writes it into a folder.
VALUE_FILE_NAMES = {
    "json": "value.json",
    "numpy": "value.npy",
    "pandas": "value.parquet",
    "pickle": "value.pkl",
}


class _NotJson(Exception):
    """Raised inside :func:`_jsonable` when a value would not come back from JSON as it was."""


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of a JSON value: sorted keys, no spaces, UTF-8.

    Equal values give equal bytes, hence equal digests. NaN and infinities are written as Python's
    ``json`` module does (``NaN``, ``Infinity``), so that a metric that is NaN still round-trips.

    :param value: a value made of None, bool, int, float, str, lists and dicts with str keys.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars made Python scalars; raise _NotJson if JSON would change it.

    Exact type checks on purpose: a tuple would come back as a list, an ``IntEnum`` as an int, a
    dict with int keys with str keys; those values are pickled instead so they keep their type.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_jsonable(item) for item in value]
    if kind is dict:
        if not all(type(key) is str for key in value):
            raise _NotJson
        return {key: _jsonable(item) for key, item in value.items()}
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        scalar = value.item()
        if type(scalar) in (bool, int, float, str):
            return scalar
    raise _NotJson


# -- save --------------------------------------------------------------------------------------------
def save_value(store: ArtifactStore, value: Any, *, producer: Mapping[str, Any] | None = None) -> ArtifactRef:
    """Store ``value`` and return its reference (the type is chosen from the value, see the module doc).

    :param store: the artifact store.
    :param value: the value; a :class:`pathlib.Path` stores the file or folder it names.
    :param producer: who wrote it (e.g. pipeline, step, output, run_id), kept in the reference's
        metadata so that a failed read can name it; it does not change the stored bytes.
    :raises ArtifactError: a path that does not exist, a folder with a symlink leading out of it,
        or a value that cannot be pickled.
    """
    metadata: dict[str, Any] = {"producer": dict(producer)} if producer else {}
    if isinstance(value, Path):
        if value.is_dir():
            return _save_directory(store, value, metadata)
        if value.is_file():
            blob = store.put_file(value)
            return ArtifactRef(blob.uri, blob.digest, "file", blob.size, {**metadata, "name": value.name})
        raise ArtifactError(f"cannot store {value}: no such file or folder")
    try:
        data = canonical_json(_jsonable(value))
    except _NotJson:
        pass
    else:
        blob = store.put_bytes(data)
        return ArtifactRef(blob.uri, blob.digest, "json", blob.size, metadata)
    # Look the libraries up instead of importing them: a value can only be an ndarray or a
    # DataFrame if its library was imported already.
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray) and value.dtype != object:
        return save_numpy(store, value, metadata)
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        # Parquet column names are strings: other names would come back changed.
        if all(isinstance(name, str) for name in value.columns):
            try:
                return save_pandas(store, value, metadata)
            except (ValueError, TypeError) as error:
                # pyarrow cannot write some frames (e.g. object columns of mixed types): keep the
                # value rather than fail the step.
                log.warning("DataFrame cannot be written as parquet (%s); storing it as a pickle", error)
        else:
            log.warning("DataFrame has column names that are not strings; storing it as a pickle")
    return _save_pickle(store, value, metadata)


def save_collection(
    store: ArtifactStore, members: list[ArtifactRef], *, producer: Mapping[str, Any] | None = None
) -> ArtifactRef:
    """Store the list of ``members``' references (a fan-out step's output): no data is copied.

    Read back, it is the list of the members' values (:func:`load_value`), or one folder per member
    named by its index (:func:`materialize`).
    """
    metadata: dict[str, Any] = {"producer": dict(producer)} if producer else {}
    data = canonical_json([member.to_dict() for member in members])
    blob = store.put_bytes(data)
    return ArtifactRef(blob.uri, blob.digest, "collection", blob.size, {**metadata, "count": len(members)})


def collection_members(store: ArtifactStore, ref: ArtifactRef) -> list[ArtifactRef]:
    """The references a ``collection`` artifact lists."""
    members = json.loads(store.get_bytes(ref.digest))
    if not isinstance(members, list):
        raise ArtifactError(f"collection artifact {ref.uri} does not hold a list")
    return [ArtifactRef.from_dict(member) for member in members]


def _save_pickle(store: ArtifactStore, value: Any, metadata: dict[str, Any]) -> ArtifactRef:
    kind = type(value)
    python_type = f"{kind.__module__}.{kind.__qualname__}"
    with store.blob_writer() as writer:
        try:
            pickle.dump(value, writer, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise ArtifactError(
                f"cannot store a value of type {python_type}: it is not JSON, an array or a DataFrame, "
                f"and it cannot be pickled ({error})"
            ) from error
        blob = writer.commit()
    return ArtifactRef(blob.uri, blob.digest, "pickle", blob.size, {**metadata, "python_type": python_type})


def _directory_files(root: Path) -> Iterator[tuple[PurePosixPath, Path | None]]:
    """(relative path, file) for each file, and (relative path, None) for each folder, under ``root``.

    Symlinks are followed when they stay inside ``root``; one leading out is refused, since it
    would copy files the step did not produce (``/etc``, a home folder) into the store.
    """
    real_root = root.resolve()

    def walk(folder: Path, relative: PurePosixPath, ancestors: frozenset[Path]) -> Iterator:
        for entry in sorted(os.scandir(folder), key=lambda item: item.name):
            path = Path(entry.path)
            entry_relative = relative / entry.name
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise ArtifactError(
                        f"cannot store folder {root}: {entry_relative} is a symlink to {target}, "
                        "outside the folder"
                    )
            if entry.is_dir(follow_symlinks=True):
                real = path.resolve()
                if real in ancestors:
                    raise ArtifactError(f"cannot store folder {root}: symlink loop at {entry_relative}")
                yield entry_relative, None
                yield from walk(path, entry_relative, ancestors | {real})
            elif entry.is_file(follow_symlinks=True):
                yield entry_relative, path
            elif entry.is_symlink():
                raise ArtifactError(f"cannot store folder {root}: {entry_relative} is a broken symlink")
            else:
                raise ArtifactError(f"cannot store folder {root}: {entry_relative} is not a file or a folder")

    yield from walk(root, PurePosixPath(), frozenset({real_root}))


def _save_directory(store: ArtifactStore, root: Path, metadata: dict[str, Any]) -> ArtifactRef:
    files: dict[str, dict[str, Any]] = {}
    folders: list[str] = []
    total = 0
    # The whole folder is walked (and its symlinks checked) before anything is stored.
    for relative, path in list(_directory_files(root)):
        if path is None:
            folders.append(str(relative))
            continue
        blob = store.put_file(path)
        # Only the executable bit is kept: the digest must not depend on the writer's umask.
        executable = bool(path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
        files[str(relative)] = {
            "digest": blob.digest,
            "size": blob.size,
            "mode": 0o755 if executable else 0o644,
        }
        total += blob.size
    manifest = {"mlpipe_manifest": MANIFEST_FORMAT, "files": files, "folders": folders}
    blob = store.put_bytes(canonical_json(manifest))
    return ArtifactRef(blob.uri, blob.digest, "directory", total, {**metadata, "files": len(files)})


# -- load --------------------------------------------------------------------------------------------
def describe(ref: ArtifactRef) -> str:
    """``artifact <uri> (<type>, output 'x' of step 'S', pipeline 'P', run R)``: for error messages."""
    facts = [ref.type]
    producer = ref.metadata.get("producer")
    if isinstance(producer, Mapping):
        if producer.get("step"):
            output = f"output {producer['output']!r} of " if producer.get("output") else ""
            facts.append(f"{output}step {producer['step']!r}")
        if producer.get("pipeline"):
            facts.append(f"pipeline {producer['pipeline']!r}")
        if producer.get("run_id"):
            facts.append(f"run {producer['run_id']}")
    return f"artifact {ref.uri} ({', '.join(facts)})"


@contextlib.contextmanager
def _naming(ref: ArtifactRef) -> Iterator[None]:
    """Re-raise a failed digest check with the artifact and its producer in the message."""
    try:
        yield
    except DigestMismatchError as error:
        raise DigestMismatchError(f"{describe(ref)} cannot be read: {error}") from None


def load_value(
    store: ArtifactStore, ref: ArtifactRef, *, allow_pickle: bool = False, workdir: Path | None = None
) -> Any:
    """The value of an artifact, of the type it was saved as; what is read is checked against the digest.

    :param store: the artifact store.
    :param ref: the artifact's reference.
    :param allow_pickle: whether a pickle may be loaded (unpickling runs code from the artifact).
    :param workdir: where files and folders are copied to (a new folder inside it per artifact);
        by default a new temporary folder, which the caller owns.
    :returns: the JSON value, ndarray or DataFrame; for a file or folder, the :class:`Path` of a
        local copy.
    :raises ArtifactError: a missing or corrupted artifact, or a pickle without ``allow_pickle``.
    """
    if ref.type == "pickle" and not allow_pickle:
        raise ArtifactError(
            f"artifact {ref.uri} is a pickle ({ref.metadata.get('python_type', 'unknown type')}); "
            "unpickling runs code, so the consuming step must set allow_pickle=True "
            "(allow_pickle: true in YAML) to load it"
        )
    if ref.type == "collection":
        with _naming(ref):
            members = collection_members(store, ref)
        return [load_value(store, member, allow_pickle=allow_pickle, workdir=workdir) for member in members]
    with _naming(ref):
        if ref.type == "json":
            return json.loads(store.get_bytes(ref.digest))
        if ref.type == "pickle":
            # Verified before a single byte is unpickled.
            with store.blob_path(ref.digest) as path, open(path, "rb") as stream:
                return pickle.load(stream)
        if ref.type == "numpy":
            return load_numpy(store, ref)
        if ref.type == "pandas":
            return load_pandas(store, ref)
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        # A folder of its own per artifact: two inputs with the same file name must not collide.
        destination = Path(tempfile.mkdtemp(prefix=f"{ref.hexdigest[:12]}-", dir=workdir))
        materialize(store, ref, destination)
        if ref.type == "file":
            return destination / _file_name(ref)
        return destination


def materialize(store: ArtifactStore, ref: ArtifactRef, destination: Path) -> None:
    """Write an artifact's content into the existing folder ``destination``.

    A folder artifact: its files and subfolders. A file: the file under its original name. Other
    values: one file, ``value.json``, ``value.npy``, ``value.parquet`` or ``value.pkl`` (a pickle is
    copied, not loaded, so this needs no ``allow_pickle``).

    :param store: the artifact store.
    :param ref: the artifact's reference.
    :param destination: an existing folder.
    """
    if not destination.is_dir():
        raise ArtifactError(f"cannot put artifact {ref.uri} into {destination}: not a folder")
    if ref.type == "collection":
        with _naming(ref):
            members = collection_members(store, ref)
        for index, member in enumerate(members):
            folder = destination / str(index)
            folder.mkdir(exist_ok=True)
            materialize(store, member, folder)
        return
    with _naming(ref):
        if ref.type == "directory":
            _materialize_directory(store, ref, destination)
        elif ref.type == "file":
            store.get_file(ref.digest, destination / _file_name(ref))
        else:
            store.get_file(ref.digest, destination / VALUE_FILE_NAMES[ref.type])


def _file_name(ref: ArtifactRef) -> str:
    name = ref.metadata.get("name")
    # A plain name only: the reference comes from XCom, and must not write outside the folder.
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ArtifactError(f"file artifact {ref.uri} has an invalid name {name!r}")
    return name


def _safe_relative(value: Any, ref: ArtifactRef) -> PurePosixPath:
    """A manifest path, checked to stay inside the destination folder."""
    path = PurePosixPath(value) if isinstance(value, str) else None
    if path is None or not value or path.is_absolute() or "\\" in value or ".." in path.parts:
        raise ArtifactError(f"folder artifact {ref.uri} has an invalid path {value!r} in its manifest")
    return path


def _materialize_directory(store: ArtifactStore, ref: ArtifactRef, destination: Path) -> None:
    try:
        manifest = json.loads(store.get_bytes(ref.digest))
        if manifest.get("mlpipe_manifest") != MANIFEST_FORMAT:
            raise ValueError("not a folder manifest")
        folders = [_safe_relative(folder, ref) for folder in manifest.get("folders", [])]
        files = [
            (_safe_relative(name, ref), check_digest(entry["digest"]), entry.get("mode"))
            for name, entry in sorted(manifest["files"].items())
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ArtifactError(f"folder artifact {ref.uri}: invalid manifest ({error})") from None
    for folder in folders:
        destination.joinpath(*folder.parts).mkdir(parents=True, exist_ok=True)
    for relative, digest, mode in files:
        target = destination.joinpath(*relative.parts)
        try:
            store.get_file(digest, target)
        except DigestMismatchError as error:
            raise DigestMismatchError(f"file {relative} of the folder: {error}") from None
        os.chmod(target, 0o755 if mode == 0o755 else 0o644)
