"""Typed serializers and artifact references, against a local folder and S3."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.serializers import canonical_json, load_value, materialize, save_value
from airflow_provider_mlpipe.artifacts.store import ArtifactStore
from airflow_provider_mlpipe.exceptions import ArtifactError

from .helpers import blob_keys, overwrite_blob


def tree(folder: Path) -> dict[str, Any]:
    """relative path -> file content (bytes), or None for a folder."""
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes() if path.is_file() else None)
        for path in sorted(folder.rglob("*"))
    }


# -- JSON ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -3,
        2**70,
        1.5,
        float("nan"),
        "héllo ✓",
        [],
        {},
        [1, [2, {"a": None}]],
        {"b": 1, "a": [True, 1.0, "x"]},
    ],
)
def test_json_values_round_trip_with_their_types(store: ArtifactStore, value: Any):
    ref = save_value(store, value)
    assert ref.type == "json"
    loaded = load_value(store, ref)
    if isinstance(value, float) and value != value:  # NaN is not equal to itself
        assert isinstance(loaded, float) and loaded != loaded
        return
    assert loaded == value
    assert type(loaded) is type(value)
    if isinstance(value, list) and value:
        assert [type(item) for item in loaded] == [type(item) for item in value]


def test_json_is_canonical_so_equal_values_share_one_blob(store: ArtifactStore):
    first = save_value(store, {"b": [1, 2], "a": {"y": 1, "x": 2}})
    second = save_value(store, {"a": {"x": 2, "y": 1}, "b": [1, 2]})
    assert first == second
    expected = canonical_json({"a": {"x": 2, "y": 1}, "b": [1, 2]})
    assert expected == b'{"a":{"x":2,"y":1},"b":[1,2]}'
    assert first.digest == "sha256:" + hashlib.sha256(expected).hexdigest()
    assert first.size == len(expected)
    assert len(blob_keys(store)) == 1


def test_numpy_scalars_are_stored_as_json(store: ArtifactStore):
    ref = save_value(
        store, {"mse": np.float32(1.5), "n": np.int64(3), "ok": np.bool_(True), "s": np.str_("a")}
    )
    assert ref.type == "json"
    loaded = load_value(store, ref)
    assert loaded == {"mse": 1.5, "n": 3, "ok": True, "s": "a"}
    assert [type(loaded[key]) for key in ("mse", "n", "ok", "s")] == [float, int, bool, str]
    assert save_value(store, np.float64(2.0)).type == "json"


# -- numpy and pandas ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype="float32").reshape(3, 4),
        np.array([True, False]),
        np.array(["a", "bc"]),
        np.zeros((0, 3), dtype="int16"),
        np.array(7, dtype="uint8"),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    ],
)
def test_numpy_arrays_round_trip(store: ArtifactStore, array: np.ndarray):
    ref = save_value(store, array)
    assert ref.type == "numpy"
    assert ref.metadata == {"dtype": array.dtype.str, "shape": list(array.shape)}
    loaded = load_value(store, ref)
    assert isinstance(loaded, np.ndarray)
    assert loaded.dtype == array.dtype
    assert loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)


def test_object_arrays_are_pickled_not_npy(store: ArtifactStore):
    array = np.array([{"a": 1}, None], dtype=object)
    ref = save_value(store, array)
    assert ref.type == "pickle"
    with pytest.raises(ArtifactError, match="allow_pickle"):
        load_value(store, ref)
    assert list(load_value(store, ref, allow_pickle=True)) == [{"a": 1}, None]


def test_dataframes_round_trip_as_parquet(store: ArtifactStore):
    frame = pd.DataFrame(
        {
            "rings": [1, 2, 3],
            "length": [0.5, 0.25, np.nan],
            "sex": ["M", "F", None],
            "when": pd.to_datetime(["2024-01-01", "2024-06-30", "2025-12-31"]),
            "flag": [True, False, True],
        },
        index=pd.Index([10, 20, 30], name="id"),
    )
    ref = save_value(store, frame)
    assert ref.type == "pandas"
    assert ref.metadata == {"rows": 3, "columns": 5}
    loaded = load_value(store, ref)
    pd.testing.assert_frame_equal(loaded, frame)
    assert save_value(store, frame.copy()).digest == ref.digest


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({1: [1, 2], "b": [3, 4]}),  # a column name that is not a str
        pd.DataFrame({"mixed": [1, "x"]}),  # an object column pyarrow cannot type
        pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
    ],
)
def test_a_frame_parquet_cannot_hold_is_pickled(store: ArtifactStore, frame: pd.DataFrame):
    ref = save_value(store, frame)
    assert ref.type == "pickle"
    pd.testing.assert_frame_equal(load_value(store, ref, allow_pickle=True), frame)


# -- pickle ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "int key"},
        {"nested": (1,)},
        Fraction(1, 3),
        datetime.date(2024, 1, 2),
        Counter("aab"),
        {1, 2},
    ],
)
def test_other_values_are_pickled_and_only_loaded_when_allowed(store: ArtifactStore, value: Any):
    ref = save_value(store, value)
    assert ref.type == "pickle"
    assert ref.metadata["python_type"] == f"{type(value).__module__}.{type(value).__qualname__}"
    with pytest.raises(ArtifactError, match="allow_pickle"):
        load_value(store, ref)
    loaded = load_value(store, ref, allow_pickle=True)
    assert loaded == value
    assert type(loaded) is type(value)


def test_unpicklable_values_are_an_artifact_error(store: ArtifactStore):
    with pytest.raises(ArtifactError, match="cannot be pickled"):
        save_value(store, lambda: None)


# -- files and folders -----------------------------------------------------------------------------
def test_a_file_round_trips_under_its_name(store: ArtifactStore, tmp_path: Path):
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(1000))
    ref = save_value(store, source)
    assert ref.type == "file"
    assert ref.metadata == {"name": "model.bin"}
    assert ref.size == 1000
    assert ref.digest == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()

    workdir = tmp_path / "work"
    first = load_value(store, ref, workdir=workdir)
    second = load_value(store, ref, workdir=workdir)
    assert first.name == second.name == "model.bin"
    assert first.read_bytes() == second.read_bytes() == source.read_bytes()
    assert first.parent != second.parent  # one folder per load: two inputs never overwrite each other
    assert first.is_relative_to(workdir)


def make_folder(root: Path) -> Path:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_text("top")
    (root / "nested" / "a.json").write_text('{"a": 1}')
    (root / "nested" / "deeper" / "b.bin").write_bytes(bytes(range(256)))
    (root / "nested" / "same.txt").write_text("top")  # same content as top.txt: one blob for both
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return root


def test_a_folder_with_nested_files_round_trips(store: ArtifactStore, tmp_path: Path):
    source = make_folder(tmp_path / "source")
    ref = save_value(store, source)
    assert ref.type == "directory"
    assert ref.metadata == {"files": 5}
    assert ref.size == sum(path.stat().st_size for path in source.rglob("*") if path.is_file())
    # 4 distinct file contents + the manifest.
    assert len(blob_keys(store)) == 5

    loaded = load_value(store, ref, workdir=tmp_path / "work")
    assert tree(loaded) == tree(source)
    assert (loaded / "run.sh").stat().st_mode & 0o111
    assert not (loaded / "top.txt").stat().st_mode & 0o111


def test_a_folder_digest_depends_on_content_only(store: ArtifactStore, tmp_path: Path):
    first = save_value(store, make_folder(tmp_path / "one"))
    second = save_value(store, make_folder(tmp_path / "two"))
    assert first.digest == second.digest
    (tmp_path / "two" / "nested" / "a.json").write_text('{"a": 2}')
    assert save_value(store, tmp_path / "two").digest != first.digest
    (tmp_path / "three").mkdir()
    (tmp_path / "three" / "x").write_text("x")
    (tmp_path / "four").mkdir()
    (tmp_path / "four" / "y").write_text("x")
    assert save_value(store, tmp_path / "three").digest != save_value(store, tmp_path / "four").digest


def test_symlinks_inside_the_folder_are_stored_as_their_content(store: ArtifactStore, tmp_path: Path):
    source = tmp_path / "source"
    (source / "data").mkdir(parents=True)
    (source / "data" / "real.txt").write_text("real")
    (source / "alias.txt").symlink_to("data/real.txt")
    (source / "data-link").symlink_to(source / "data")  # absolute, but inside
    loaded = load_value(store, save_value(store, source), workdir=tmp_path / "work")
    assert tree(loaded) == {
        "alias.txt": b"real",
        "data": None,
        "data-link": None,
        "data-link/real.txt": b"real",
        "data/real.txt": b"real",
    }
    assert not (loaded / "alias.txt").is_symlink()


@pytest.mark.parametrize("target", ["../outside.txt", "OUTSIDE_ABSOLUTE", "..", "/"])
def test_symlinks_leading_out_of_the_folder_are_refused(store: ArtifactStore, tmp_path: Path, target: str):
    (tmp_path / "outside.txt").write_text("secret")
    source = tmp_path / "source"
    source.mkdir()
    (source / "fine.txt").write_text("fine")
    link_target = str(tmp_path / "outside.txt") if target == "OUTSIDE_ABSOLUTE" else target
    (source / "escape").symlink_to(link_target)
    with pytest.raises(ArtifactError, match="outside the folder"):
        save_value(store, source)
    assert blob_keys(store) == []  # the folder is checked before anything is stored


def test_a_symlink_loop_is_refused(store: ArtifactStore, tmp_path: Path):
    source = tmp_path / "source"
    (source / "a").mkdir(parents=True)
    (source / "a" / "loop").symlink_to(source)
    with pytest.raises(ArtifactError, match="loop"):
        save_value(store, source)


def test_a_missing_path_is_an_error(store: ArtifactStore, tmp_path: Path):
    with pytest.raises(ArtifactError, match="no such file or folder"):
        save_value(store, tmp_path / "missing")


def test_a_corrupted_file_of_a_folder_fails_the_load(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    source = tmp_path / "source"
    source.mkdir()
    (source / "weights.bin").write_bytes(b"w" * 100)
    ref = save_value(store, source)
    overwrite_blob(store, "sha256:" + hashlib.sha256(b"w" * 100).hexdigest(), b"tampered")
    destination = tmp_path / "dest"
    destination.mkdir()
    with pytest.raises(ArtifactError, match="corrupted"):
        materialize(store, ref, destination)
    assert not (destination / "weights.bin").exists()


@pytest.mark.parametrize(
    "bad_path", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "a\\..\\evil.txt", ""]
)
def test_a_manifest_cannot_write_outside_the_destination(store: ArtifactStore, tmp_path: Path, bad_path: str):
    content = store.put_bytes(b"evil")
    manifest = {"mlpipe_manifest": 1, "files": {bad_path: {"digest": content.digest, "size": 4, "mode": 420}}}
    blob = store.put_bytes(canonical_json(manifest))
    ref = ArtifactRef(blob.uri, blob.digest, "directory", 4, {"files": 1})
    destination = tmp_path / "inside" / "dest"
    destination.mkdir(parents=True)
    with pytest.raises(ArtifactError, match="invalid path"):
        materialize(store, ref, destination)
    assert list(tmp_path.rglob("evil.txt")) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", None])
def test_a_file_reference_with_a_bad_name_is_refused(store: ArtifactStore, tmp_path: Path, name: Any):
    blob = store.put_bytes(b"content")
    ref = ArtifactRef(blob.uri, blob.digest, "file", 7, {"name": name})
    (tmp_path / "dest").mkdir()
    with pytest.raises(ArtifactError, match="invalid name"):
        materialize(store, ref, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []
    assert not (tmp_path / "evil").exists()


# -- materialize -----------------------------------------------------------------------------------
def test_materialize_puts_each_type_into_a_folder(store: ArtifactStore, tmp_path: Path):
    source = make_folder(tmp_path / "source")
    single = tmp_path / "single.csv"
    single.write_text("a,b\n1,2\n")
    cases = {
        "json": ({"k": [1, 2]}, "value.json"),
        "numpy": (np.arange(4), "value.npy"),
        "pandas": (pd.DataFrame({"x": [1.0]}), "value.parquet"),
        "pickle": ((1, "tuple"), "value.pkl"),
        "file": (single, "single.csv"),
    }
    for kind, (value, file_name) in cases.items():
        ref = save_value(store, value)
        assert ref.type == kind
        destination = tmp_path / f"dest-{kind}"
        destination.mkdir()
        materialize(store, ref, destination)
        assert [path.name for path in destination.iterdir()] == [file_name]
        written = destination / file_name
        assert hashlib.sha256(written.read_bytes()).hexdigest() == ref.hexdigest

    assert json.loads((tmp_path / "dest-json" / "value.json").read_text()) == {"k": [1, 2]}
    np.testing.assert_array_equal(np.load(tmp_path / "dest-numpy" / "value.npy"), np.arange(4))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dest-pandas" / "value.parquet"), pd.DataFrame({"x": [1.0]})
    )

    destination = tmp_path / "dest-directory"
    destination.mkdir()
    materialize(store, save_value(store, source), destination)
    assert tree(destination) == tree(source)


def test_materialize_needs_an_existing_folder(store: ArtifactStore, tmp_path: Path):
    ref = save_value(store, 1)
    with pytest.raises(ArtifactError, match="not a folder"):
        materialize(store, ref, tmp_path / "missing")


# -- lazy imports ----------------------------------------------------------------------------------
def test_saving_and_loading_json_does_not_import_pandas_or_numpy(tmp_path: Path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from airflow_provider_mlpipe.artifacts.serializers import load_value, save_value\n"
        "from airflow_provider_mlpipe.artifacts.store import LocalArtifactStore\n"
        f"store = LocalArtifactStore({str(tmp_path / 'store')!r})\n"
        "assert load_value(store, save_value(store, {'a': [1, 2.5, None]})) == {'a': [1, 2.5, None]}\n"
        "assert load_value(store, save_value(store, (1, 2)), allow_pickle=True) == (1, 2)\n"
        "loaded = [name for name in ('pandas', 'numpy', 'pyarrow') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- ArtifactRef -----------------------------------------------------------------------------------
def test_artifact_ref_round_trips_through_json(store: ArtifactStore):
    ref = save_value(store, np.arange(3))
    data = ref.to_dict()
    assert set(data) == {"uri", "digest", "type", "size", "metadata"}
    assert ArtifactRef.from_dict(json.loads(json.dumps(data))) == ref
    data["metadata"]["shape"].append(99)
    assert ref.metadata["shape"] == [3]  # to_dict returns a copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.digest = "sha256:" + "0" * 64  # type: ignore[misc]
    assert len({ref, ArtifactRef.from_dict(ref.to_dict())}) == 1
    assert ref.hexdigest == ref.digest.removeprefix("sha256:")


GOOD = {"uri": "file:///x", "digest": "sha256:" + "a" * 64, "type": "json", "size": 3, "metadata": {}}


@pytest.mark.parametrize(
    "data",
    [
        None,
        "sha256:abc",
        [],
        {key: value for key, value in GOOD.items() if key != "digest"},
        {key: value for key, value in GOOD.items() if key != "uri"},
        {**GOOD, "digest": "sha256:../../x"},
        {**GOOD, "digest": "md5:" + "a" * 32},
        {**GOOD, "type": "exe"},
        {**GOOD, "size": -1},
        {**GOOD, "size": True},
        {**GOOD, "size": "3"},
        {**GOOD, "uri": ""},
        {**GOOD, "metadata": ["not", "a", "dict"]},
    ],
)
def test_malformed_references_are_refused(data: Any):
    with pytest.raises(ArtifactError, match="invalid artifact"):
        ArtifactRef.from_dict(data)


def test_references_without_metadata_or_with_extra_keys_load():
    minimal = {key: value for key, value in GOOD.items() if key != "metadata"}
    assert ArtifactRef.from_dict(minimal).metadata == {}
    assert ArtifactRef.from_dict({**GOOD, "added_later": 1}) == ArtifactRef.from_dict(GOOD)


def test_loading_a_missing_artifact_is_an_error(store: ArtifactStore):
    ref = ArtifactRef.from_dict(GOOD)
    with pytest.raises(ArtifactError, match="no blob"):
        load_value(store, ref)
