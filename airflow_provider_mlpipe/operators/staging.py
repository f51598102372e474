"""Putting a literal input (a local file or folder, an S3 object or prefix) into a step's input folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from airflow_provider_mlpipe.exceptions import StepExecutionError


def stage_location(
    location: str, destination: Path, *, base_dir: Path | None, aws_conn_id: str | None = None
) -> None:
    """Copy a local file/folder or an S3 object/prefix into ``destination`` (a directory).

    :param aws_conn_id: the Airflow connection for ``s3://`` (the same as the artifact store's).
    """
    if location.startswith("s3://"):
        _stage_s3(location, destination, aws_conn_id)
        return
    path = Path(location.removeprefix("file://")).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_dir():
        shutil.copytree(path, destination, dirs_exist_ok=True)
    elif path.is_file():
        shutil.copy2(path, destination / path.name)
    else:
        raise StepExecutionError(f"input {location!r} not found (looked at {path})")


def _stage_s3(url: str, destination: Path, aws_conn_id: str | None) -> None:
    from airflow_provider_mlpipe.artifacts.aws import download_prefix

    if not download_prefix(url, destination, aws_conn_id=aws_conn_id):
        raise StepExecutionError(f"input {url!r}: no object found under that prefix")
