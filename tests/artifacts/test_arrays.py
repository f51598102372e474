"""numpy arrays and DataFrames through the store: the S3 streaming read, and the DataFrame read that
must stay what ``pandas.read_parquet`` gives (it uses one pandas internal, see ``pandas_internal``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlpipe.artifacts.arrays import load_pandas
from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.serializers import load_value, save_value
from airflow_provider_mlpipe.artifacts.store import ArtifactStore


def rich_frame(rows: int = 3000) -> pd.DataFrame:
    """Columns of many kinds, with missing values, a named index and attrs."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "float": rng.random(rows),
            "int": rng.integers(-(1 << 40), 1 << 40, rows),
            "nullable_int": pd.array([None if i % 7 == 0 else i for i in range(rows)], dtype="Int64"),
            "text": [None if i % 11 == 0 else f"row {i} ✓" for i in range(rows)],
            "category": pd.Categorical(rng.choice(["a", "b", "c"], rows)),
            "flag": rng.random(rows) > 0.5,
            "when_utc": pd.date_range("2024-01-01", periods=rows, freq="min", tz="UTC"),
            "when_paris": pd.date_range("2024-03-30", periods=rows, freq="h", tz="Europe/Paris"),
            "naive": pd.date_range("2020-01-01", periods=rows, freq="D"),
            "delta": pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
            "day": [datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 365) for i in range(rows)],
        },
        index=pd.Index([f"k{i}" for i in range(rows)], name="key"),
    )
    frame.attrs = {"source": "test", "version": 2}
    return frame


def test_a_frame_loads_exactly_as_pandas_read_parquet_gives_it(store: ArtifactStore, tmp_path: Path):
    """Fails loudly if a pandas or pyarrow upgrade makes the row-group read differ from pandas'."""
    frame = rich_frame()
    ref = save_value(store, frame)
    assert ref.type == "pandas"
    loaded = load_pandas(store, ref)
    with store.blob_path(ref.digest) as path:
        expected = pd.read_parquet(path, engine="pyarrow")
    pd.testing.assert_frame_equal(loaded, expected)
    assert loaded.attrs == expected.attrs == {"source": "test", "version": 2}
    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)


def test_a_frame_of_many_row_groups_loads_whole(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    rows = 2_500_000  # three row groups of pyarrow's default size
    frame = pd.DataFrame({"i": np.arange(rows), "s": pd.Series(np.arange(rows) % 97).astype("str")})
    loaded = load_value(store, save_value(store, frame))
    pd.testing.assert_frame_equal(loaded, frame)


def test_the_default_arrow_memory_pool_is_restored_after_a_read(tmp_path: Path):
    import pyarrow

    store = LocalArtifactStore(tmp_path / "store")
    before = pyarrow.default_memory_pool().backend_name
    load_value(store, save_value(store, pd.DataFrame({"x": [1.0, 2.0]})))
    assert pyarrow.default_memory_pool().backend_name == before


@pytest.mark.parametrize("order", ["C", "F"])
def test_an_array_streams_from_s3_into_its_own_memory(s3_conn: str, s3_bucket: str, order: str):
    from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore

    store = S3ArtifactStore(s3_bucket, "arrays", aws_conn_id=s3_conn)
    original = np.asarray(np.random.default_rng(3).random((300, 700)), order=order)
    loaded = load_value(store, save_value(store, original))
    np.testing.assert_array_equal(loaded, original)
    assert loaded.flags.owndata and loaded.flags.writeable
    assert loaded.flags.f_contiguous if order == "F" else loaded.flags.c_contiguous
