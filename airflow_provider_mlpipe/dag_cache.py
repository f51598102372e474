"""Built DAGs kept between DAG-file parses, beside the spec models of the parse cache.

The DAG processor parses the loader's DAG file every 30 s, and a worker parses it before each task;
most of those parses build again, task by task, DAGs that did not change. Building them is mostly
Airflow's own work (its operator constructor runs its checks and hooks for every task), and taking
a pickled DAG back costs a small part of it (``bench/bench_factory.py``). So ``load_pipeline_dags``
keeps each spec's built DAG in the parse cache's folder (``[mlpipe] parse_cache``, see
:mod:`~airflow_provider_mlpipe.spec.parse_cache`: same privacy, same handling of a damaged or stale
entry) and takes it back when everything it was built from is the same:

- the spec (its text, path and folder), as for the spec models;
- the code that builds it: every module of this package, the versions of Python and Airflow, and
  pendulum's installed files;
- Airflow's configuration (the DAG's defaults come from it): every ``AIRFLOW__*`` environment
  variable, ``AIRFLOW_HOME``, ``AIRFLOW_CONFIG`` and the configuration file's size and modification
  time. Processes that differ in it (a task process blocks the metadata DB through one) each keep
  their own DAG;
- and, checked on every parse, what the steps read from other files: each step's digest (its code
  files, the project modules they import, its declared ``code_files``) and its literal local inputs'
  content digests are computed again, exactly as a build computes them, and must equal those of the
  kept DAG. An edited script or input file, or a deleted one, is seen at the next parse as before,
  and then the DAG is built again (and its checks run, so a missing script is still an import error).

Airflow applies cluster policies to a DAG after the file's code returns it, so a kept DAG is the one
before any policy. ``off`` turns this off with the rest of the parse cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.fingerprint import step_sources
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.spec.parse_cache import ParseCache, code_stamp

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

FORMAT = b"mlpipe-dag-cache-1"
ENTRY_KIND = "dag"
CONFIGURATION_LOCATIONS = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")
# A step's digest, its code files' digests and what the serialized DAG says of its sources
# (``fingerprint.step_sources``: what a step's task is built with).
StepSources = tuple[str, dict[str, str], dict[str, Any]]


@dataclass(frozen=True)
class BuiltDag:
    """A kept DAG, the pipeline it was built from and each step's sources at that time.

    :param pipeline: the pipeline model (its steps are the DAG's tasks' own).
    :param dag: the DAG ``build_dag`` returned.
    :param sources: each step's :func:`step_sources` when the DAG was built.
    """

    pipeline: Pipeline
    dag: DAG
    sources: Mapping[str, StepSources]

    def is_current(self) -> bool:
        """Whether every step's code and literal inputs are still what the DAG was built with."""
        steps = self.pipeline.steps
        if set(steps) != set(self.sources):
            return False
        return all(step_sources(step) == self.sources[name] for name, step in steps.items())


@lru_cache(maxsize=1)
def build_code_stamp() -> bytes:
    """The code that builds DAGs: every module of this package (``parse_cache.code_stamp``), the
    version of Airflow, and pendulum's installed files (a DAG holds its time zones; its
    ``__version__`` is deprecated)."""
    import airflow
    import pendulum

    installed = os.stat(pendulum.__file__)
    versions = f"{airflow.__version__}\0{installed.st_size}\0{installed.st_mtime_ns}\0"
    return hashlib.sha256(FORMAT + b"\0" + versions.encode() + code_stamp(())).digest()


def configuration_stamp() -> bytes:
    """Airflow's configuration as this process sees it: the ``AIRFLOW__*`` environment variables,
    ``AIRFLOW_HOME`` and ``AIRFLOW_CONFIG``, and the configuration file's size and modification time."""
    from airflow_provider_mlpipe.settings import airflow_home

    stamp = hashlib.sha256()
    for name, value in sorted(os.environ.items()):
        # Settings only: not a task's context (AIRFLOW_CTX_*) nor connections and variables.
        if name.startswith("AIRFLOW__") or name in CONFIGURATION_LOCATIONS:
            stamp.update(f"{name}={value}\0".encode("utf-8", "surrogateescape"))
    config_file = os.environ.get("AIRFLOW_CONFIG") or str(airflow_home() / "airflow.cfg")
    try:
        status = os.stat(config_file)
        stamp.update(f"{config_file}\0{status.st_size}\0{status.st_mtime_ns}".encode())
    except OSError:
        stamp.update(f"{config_file}\0missing".encode())
    return stamp.digest()


class DagCache:
    """Built DAGs kept in a :class:`ParseCache`'s folder (see the module docstring).

    :param cache: the parse cache whose folder and entry handling it shares.
    """

    def __init__(self, cache: ParseCache) -> None:
        self.cache = cache
        self._configuration = configuration_stamp()  # one parse: one configuration

    def entry(self, file: str) -> Path:
        """Where the DAG of the spec ``file`` is kept for this configuration: the DAG processor and
        the workers may run with different settings, and each keeps its own DAG."""
        return self.cache.entry(file, ENTRY_KIND, variant=self._configuration)

    def key(self, file: str, base_dir: Path, text: str) -> bytes:
        """What a kept DAG must have been built from to be taken back (its steps' sources aside)."""
        spec = ParseCache.key(file, base_dir, text)
        return hashlib.sha256(build_code_stamp() + self._configuration + spec).hexdigest().encode()

    def load(self, path: Path, build: Callable[[], tuple[Pipeline, DAG]]) -> DAG:
        """The DAG kept for the spec ``path`` if nothing it was built from changed; else ``build()``'s
        (which raises the spec's errors), kept for the next parse."""
        file = os.fspath(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return build()[1]  # it says what is wrong with the file
        entry = self.entry(file)
        key = self.key(file, path.absolute().parent, text)
        kept = self.cache.take(entry, key, BuiltDag)
        if kept is not None and kept.is_current():
            return kept.dag
        pipeline, dag = build()
        sources = _built_sources(pipeline, dag)
        if sources is not None:
            self.cache.keep(entry, key, BuiltDag(pipeline, dag, sources))
        return dag


def _built_sources(pipeline: Pipeline, dag: DAG) -> dict[str, StepSources] | None:
    """Each step's sources as its task was built with them; None if a step has no such task."""
    sources: dict[str, StepSources] = {}
    for name in pipeline.steps:
        task = dag.task_dict.get(name)
        step_manifest = getattr(task, "mlpipe_step", None)
        if not isinstance(step_manifest, Mapping):
            log.debug("Not keeping DAG %s: step %s has no task of its own", dag.dag_id, name)
            return None
        sources[name] = (step_manifest["digest"], task.mlpipe_code_files, task.mlpipe_sources)  # type: ignore[union-attr]
    return sources
