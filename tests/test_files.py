"""Small files written whole (``airflow_provider_mlpipe.files``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airflow_provider_mlpipe.files import write_whole


def test_a_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "record.json"
    write_whole(target, b"first", folder_mode=0o700)
    write_whole(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert sorted(path.name for path in target.parent.iterdir()) == ["record.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_whole(target, b"old")
    with pytest.raises(TypeError):
        write_whole(target, "not bytes", temp_prefix=".entry-")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [path.name for path in tmp_path.iterdir()] == ["record.json"]
