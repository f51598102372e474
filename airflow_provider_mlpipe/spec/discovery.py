"""Finding pipeline specs in a folder, and reading a spec's name without parsing it."""

from __future__ import annotations

import os
import re
from pathlib import Path

SPEC_SUFFIXES = (".pipeline.yaml", ".pipeline.yml")


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


def discover_spec_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every pipeline spec (``*.pipeline.yaml``, ``*.pipeline.yml``) under ``folder``, sorted.

    Hidden files and folders (``.git``, ``.venv``...) and ``__pycache__`` are skipped without being
    walked. Folder symlinks are followed (as Airflow does for DAG files), but each real folder is
    read once: no endless loops, and no spec found twice (which would be a duplicate pipeline name).

    :param folder: the folder to search recursively; a missing folder has no specs.
    """
    found: list[Path] = []
    visited: set[str] = set()
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in visited:
            subdirectories[:] = []
            continue
        visited.add(real)
        # Real folders before symlinks to them, so a spec is found under its real path.
        subdirectories[:] = sorted(
            (name for name in subdirectories if not _hidden(name)),
            key=lambda name: (os.path.islink(os.path.join(directory, name)), name),
        )
        found += [
            Path(directory, name) for name in files if name.endswith(SPEC_SUFFIXES) and not _hidden(name)
        ]
    return sorted(found)


# ``name: value`` at the start of a line, the value plain or simply quoted. Deliberately strict: a
# value it cannot read for sure gives None, and the caller then does the full parse.
_NAME_LINE = re.compile(
    r"""^name[ \t]*:[ \t]+(?:"([^"\\]*)"|'([^']*)'|([^\s#"'&*!|>%@`{}\[\],][^\s#]*))[ \t]*(?:[ \t]#.*)?$"""
)


def peek_pipeline_name(path: str | os.PathLike[str]) -> str | None:
    """The spec's top-level ``name:`` read with a regular expression, without parsing the YAML.

    Called for every spec when an Airflow worker needs a single DAG, so it must be cheap; it reads
    lines up to the first ``name:`` at the start of a line (nested keys are indented).

    :param path: the spec file.
    :returns: the name, or None if there is no such line, it is not a simple value, or the file
        cannot be read.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                match = _NAME_LINE.match(line.rstrip("\r\n"))
                if match:
                    return next(group for group in match.groups() if group is not None)
    except OSError:
        return None
    return None
