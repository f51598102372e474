"""What a spec file reads to, kept between DAG-file parses, as Python keeps compiled modules.

Airflow's DAG processor parses the loader's DAG file again every ``min_file_process_interval`` (30 s
by default), and a worker parses it before each task: most of those parses read specs that did not
change. What a spec's text reads to (the pipeline model, before any check that looks at other files)
depends only on the text, the spec's path and folder, and the code of the spec reader and the
model. So the loader keeps it, pickled, under ``[mlpipe] parse_cache`` (default
``$AIRFLOW_HOME/mlpipe/parse-cache``; ``off`` turns it off), one file per spec, and takes it back
while all of those are the same: that skips reading the YAML and building the model (about 0.1 s of
a 0.5 s parse of 100 specs of 20 steps, ``bench/bench_factory.py``).

Everything that looks at other files still runs on every parse: the pipeline's checks (scripts
exist...) and the steps' code digests, so an edited script or module is seen at the next parse as
before. A spec that does not read is never kept. An entry that is stale (other text, path or reader
code), unreadable or corrupt is ignored and written again; a cache folder that cannot be written only
costs the speed-up. The folder is created private to the user (``0700``, entries ``0600``), and an
entry another user owns or may change is not used: whoever could write one could make the DAG
processor unpickle what they wrote (as whoever can write in ``$AIRFLOW_HOME`` can already change
Airflow's configuration and plugins). A temporary file left by a writer killed mid-write goes at a
later write.

The DAG-file loader keeps each spec's built DAG in the same folder, as entries of another kind
(:meth:`ParseCache.entry`'s ``kind``), with the same handling: see
:mod:`airflow_provider_mlpipe.dag_cache`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from airflow_provider_mlpipe.files import write_whole
from airflow_provider_mlpipe.model.pipeline import Pipeline

log = logging.getLogger(__name__)
Kept = TypeVar("Kept")

# Bumped when what an entry holds changes shape (code_stamp covers the code).
FORMAT = b"mlpipe-parse-cache-1"
OFF = ("off", "false", "0", "no", "none")
_KEY_LENGTH = 64  # a hex sha256, the first line of an entry
TEMP_PREFIX = ".entry-"  # an entry being written
STRAY_AFTER_S = 3600  # a temporary file this old is no write in progress


# The code that decides what a spec reads to: the spec reader and the model it builds (every class
# an entry holds is the model's).
STAMPED_PACKAGES = ("model", "spec")
SKIPPED_FOLDERS = {"__pycache__", "node_modules"}  # no module of this package is in there


@lru_cache(maxsize=1)
def package_modules() -> tuple[tuple[str, int, int], ...]:
    """Each module of this package: its path in the package, size and modification time. Read once
    per parsing process (about 1.5 ms), for the parse cache's entries and the DAG cache's alike."""
    modules: list[tuple[str, int, int]] = []

    def walk(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name.endswith(".py") and entry.is_file():
                status = entry.stat()
                modules.append((prefix + entry.name, status.st_size, status.st_mtime_ns))
            elif entry.is_dir() and entry.name not in SKIPPED_FOLDERS:
                walk(Path(entry.path), f"{prefix}{entry.name}/")

    walk(Path(__file__).resolve().parents[1], "")
    return tuple(modules)


@lru_cache(maxsize=4)
def code_stamp(packages: tuple[str, ...] = STAMPED_PACKAGES) -> bytes:
    """What the code that made an entry is: the name, size and modification time of each module of
    ``packages`` (subpackages of this one; empty: all of it), and Python's version. A model built by
    other code, even an edited development checkout of the same version, is not taken back."""
    stamp = hashlib.sha256(FORMAT + b"\0" + sys.version.encode())
    for relative, size, modified in package_modules():
        if not packages or relative.split("/")[0] in packages:
            stamp.update(f"{relative}\0{size}\0{modified}\0".encode())
    return stamp.digest()


class ParseCache:
    """The spec models kept in ``folder`` (see the module docstring).

    :param folder: where entries are written; created (private to the user) on the first write.
    """

    # Entries are per spec path; paths change (a versioned DAG bundle checks each version out in its
    # own folder), so past this many the least recently written go.
    max_entries = 5000

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    @classmethod
    def configured(cls) -> ParseCache | None:
        """The cache ``[mlpipe] parse_cache`` names (default ``$AIRFLOW_HOME/mlpipe/parse-cache``);
        None when it is ``off``."""
        from airflow_provider_mlpipe.settings import airflow_home, mlpipe_option

        setting = mlpipe_option("parse_cache").strip()
        if setting.lower() in OFF:
            return None
        return cls(Path(setting).expanduser() if setting else airflow_home() / "mlpipe" / "parse-cache")

    def entry(self, file: str, kind: str = "", variant: bytes = b"") -> Path:
        """The entry of the spec ``file`` (one per spec, ``kind`` and ``variant``: an edit replaces it).

        :param kind: what the entry holds ("": the spec's model).
        :param variant: what else tells entries of the same spec and kind apart, where processes that
            differ in it parse the same spec (each keeps its own entry instead of replacing the other's).
        """
        suffix = f".{kind}.pickle" if kind else ".pickle"
        name = os.fsencode(file) + (b"\0" + variant if variant else b"")
        return self.folder / (hashlib.sha256(name).hexdigest()[:32] + suffix)

    @staticmethod
    def key(file: str, base_dir: Path | None, text: str) -> bytes:
        """What an entry must have been made from to be taken back."""
        parts = hashlib.sha256(code_stamp())
        for part in (os.fsencode(file), os.fsencode(str(base_dir)), text.encode("utf-8", "surrogatepass")):
            parts.update(len(part).to_bytes(8, "big") + part)
        return parts.hexdigest().encode()

    def load(self, file: str, base_dir: Path | None, text: str, read: Callable[[], Pipeline]) -> Pipeline:
        """The model kept for this exact spec; else ``read()``'s, kept for the next parse."""
        entry, key = self.entry(file), self.key(file, base_dir, text)
        pipeline = self.take(entry, key, Pipeline)
        if pipeline is None:
            pipeline = read()
            self.keep(entry, key, pipeline)
        return pipeline

    def get(self, file: str, base_dir: Path | None, text: str) -> Pipeline | None:
        """The model kept for this exact spec, or None."""
        return self.take(self.entry(file), self.key(file, base_dir, text), Pipeline)

    def put(self, file: str, base_dir: Path | None, text: str, pipeline: Pipeline) -> None:
        """Keep ``pipeline`` as what this spec reads to; a failure only costs the next parse its speed-up."""
        self.keep(self.entry(file), self.key(file, base_dir, text), pipeline)

    def take(self, entry: Path, key: bytes, kind: type[Kept]) -> Kept | None:
        """What ``entry`` keeps if it was made from ``key`` and is a ``kind``, else None (also for an
        entry that is missing, torn, corrupt or not private to this user)."""
        try:
            with open(entry, "rb") as stream:
                status = os.fstat(stream.fileno())
                # Only an entry this user wrote, that nobody else may change: it is unpickled.
                if status.st_uid != os.getuid() or status.st_mode & 0o022:
                    log.warning("Ignoring the parse cache entry %s: not private to this user", entry)
                    return None
                data = stream.read()
        except OSError:
            return None
        if data[:_KEY_LENGTH] != key or data[_KEY_LENGTH : _KEY_LENGTH + 1] != b"\n":
            return None
        try:
            kept = pickle.loads(data[_KEY_LENGTH + 1 :])
        except Exception as error:  # a torn or corrupt entry: read the spec again
            log.warning("Ignoring the unreadable parse cache entry %s: %s", entry, error)
            return None
        return kept if isinstance(kept, kind) else None

    def keep(self, entry: Path, key: bytes, value: object) -> None:
        """Keep ``value`` in ``entry``, made from ``key``; a failure only costs the next parse its
        speed-up."""
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # something in the model that pickle cannot take: not kept
            log.debug("Not keeping %s in the parse cache: %s", entry, error)
            return
        try:
            # Whole or not at all: a parse in another process reads either entry, never half of one.
            write_whole(entry, key + b"\n" + payload, temp_prefix=TEMP_PREFIX, folder_mode=0o700)
            self._prune()
        except OSError as error:
            log.debug("Cannot write the parse cache entry %s: %s", entry, error)

    def _prune(self) -> None:
        """Keep at most ``max_entries`` entries, the most recently written, and remove what a writer
        killed mid-write left (a temporary file older than an hour)."""
        entries, now = [], time.time()
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".pickle"):
                entries.append(entry)
            elif entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < now - STRAY_AFTER_S:
                Path(entry.path).unlink(missing_ok=True)
        if len(entries) <= self.max_entries:
            return
        entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
        for entry in entries[: len(entries) - self.max_entries]:
            Path(entry.path).unlink(missing_ok=True)
