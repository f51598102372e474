"""Where a step input that is not written out in the spec may read from: ``[mlpipe] input_roots``.

Whoever triggers a run chooses its parameter values; the spec's author chose everything else. An
input given through a parameter (``inputs: {raw: {param: DataPath}}``, or any expression: ``join``,
``json_get``...) would otherwise copy whatever the worker can read (``/etc/passwd``, another user's
files, the worker's own configuration) into the artifact store, where the one who triggered the run
can read it. So such an input must lie under one of the input roots, after symlinks and ``..`` are
resolved. A literal path in the spec is the author's choice and is not checked: the author's scripts
run on the worker and can read what they like anyway, so a check would protect nothing.

Roots: ``[mlpipe] input_roots`` (``AIRFLOW__MLPIPE__INPUT_ROOTS``), comma-separated local folders and
``s3://bucket/prefix`` locations. Unset: the pipeline's own folder (where its spec is) and Airflow's
dags folder, which hold what the pipelines' authors put there.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_mlpipe.exceptions import InputNotAllowedError


@dataclass(frozen=True)
class InputRoots:
    """The places inputs given through parameters may read from.

    :param folders: local folders (resolved: symlinks followed).
    :param s3_prefixes: ``(bucket, key prefix)`` pairs; an empty prefix is the whole bucket.
    :param configured: whether they come from ``[mlpipe] input_roots`` (else the defaults).
    """

    folders: tuple[Path, ...]
    s3_prefixes: tuple[tuple[str, str], ...]
    configured: bool

    def describe(self) -> str:
        places = [str(folder) for folder in self.folders]
        places += [f"s3://{bucket}/{prefix}" for bucket, prefix in self.s3_prefixes]
        return ", ".join(places) or "none"


def input_roots(base_dir: Path | None) -> InputRoots:
    """The input roots: ``[mlpipe] input_roots``, else the pipeline's folder and the dags folder."""
    from airflow_provider_mlpipe.settings import dags_folder, mlpipe_option

    configured = [item.strip() for item in mlpipe_option("input_roots").split(",") if item.strip()]
    entries = configured or [str(place) for place in (base_dir, dags_folder()) if place is not None]
    folders: list[Path] = []
    s3: list[tuple[str, str]] = []
    for entry in entries:
        if entry.startswith("s3://"):
            bucket, _, prefix = entry.removeprefix("s3://").partition("/")
            s3.append((bucket, prefix.strip("/")))
        else:
            folders.append(Path(entry.removeprefix("file://")).expanduser().resolve())
    return InputRoots(tuple(folders), tuple(s3), bool(configured))


def checked_location(location: str, *, step: str, input_name: str, base_dir: Path | None) -> str:
    """``location`` as it is to be read (a local path with symlinks and ``..`` resolved, or the S3
    URL), if it lies under an input root.

    :raises InputNotAllowedError: it does not; the message names the step, the input and the roots.
    """
    roots = input_roots(base_dir)
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        normalised = posixpath.normpath("/" + key).lstrip("/") if key else ""
        if ".." not in key.split("/") and any(
            bucket == root_bucket
            and (not prefix or normalised == prefix or normalised.startswith(prefix + "/"))
            for root_bucket, prefix in roots.s3_prefixes
        ):
            return location
        resolved = location
    else:
        path = Path(location.removeprefix("file://")).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        real = Path(os.path.realpath(path))
        if any(real == folder or real.is_relative_to(folder) for folder in roots.folders):
            return str(real)
        resolved = str(real)
    where = (
        "[mlpipe] input_roots"
        if roots.configured
        else "the default roots (the pipeline's and the dags folder)"
    )
    raise InputNotAllowedError(
        f"step {step!r}, input {input_name!r}: {location!r} (resolved: {resolved}) is outside {where}: "
        f"{roots.describe()}. An input given through a parameter or expression must lie under an input "
        "root; add its folder or s3:// prefix to [mlpipe] input_roots (AIRFLOW__MLPIPE__INPUT_ROOTS)"
    )
