"""What a factory-built DAG says about its steps, so that selective runs can be planned from the
serialized DAG (in the api-server and the scheduler) without importing any DAG file.

Two carriers, both serialized with the DAG and never truncated by size:

- each step task's ``mlpipe_step`` attribute: ``{"kind": ..., "digest": ...}``, a template field of a
  fixed, small size (Airflow truncates template fields longer than ``[core]
  max_templated_field_length``, 4096 characters by default, so nothing that grows with the pipeline
  may travel this way);
- each step task's ``mlpipe_sources`` attribute: its code files' short digests and its literal local
  inputs' content digests as the DAG processor saw them (``fingerprint.sources_manifest``), kept under
  the template field limit by dropping the per-file details when they would not fit;
- the DAG's edge labels, which the graph view shows: ``train, validation`` on an edge that passes
  data (the outputs read; a ``JsonGet`` reads the output that holds its property file; output names
  hold no spaces or commas), ``if branch`` / ``else branch`` on the edges from a
  condition step to its branches (``if branch: outcome`` when the branch step also reads the
  condition's output). An edge without a label is a plain ``depends_on``.

No Airflow import here: the DAG is read through its attributes, whichever kind it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.selective.model import StepInfo

# The task that decides an execution's outcome (see ``factory.build_dag``). Step names start with a
# letter or digit, so no step can take a task id that starts with "_".
OUTCOME_TASK_ID = "_pipeline_outcome"
MANIFEST_ATTRIBUTE = "mlpipe_step"
SOURCES_ATTRIBUTE = "mlpipe_sources"
BRANCHES = ("if", "else")
_BRANCH_SUFFIX = " branch"
_DATA_SEPARATOR = ", "


def is_step_task_id(task_id: str) -> bool:
    """Whether a task of a pipeline's DAG is one of its steps (the provider's own tasks start with _)."""
    return not task_id.startswith("_")


def step_manifest(kind: str, digest: str) -> dict[str, str]:
    """The ``mlpipe_step`` attribute of a step's task."""
    return {"kind": kind, "digest": digest}


def edge_label(branch: str | None, data: Iterable[str]) -> str | None:
    """The label of the edge into a step: the condition branch it is in, and the data it reads.

    :param branch: ``"if"`` or ``"else"`` when the edge goes from a condition step to its branch.
    :param data: names of the upstream step's outputs that the step reads.
    """
    names = _DATA_SEPARATOR.join(sorted(set(data)))
    if branch is None:
        return names or None
    return f"{branch}{_BRANCH_SUFFIX}: {names}" if names else f"{branch}{_BRANCH_SUFFIX}"


def parse_edge_label(label: str | None) -> tuple[str | None, list[str]]:
    """The (branch, data names) of an edge label written by :func:`edge_label`.

    Output names hold no spaces, so "if branch" cannot be mistaken for one.
    """
    if not label:
        return None, []
    head, _, rest = label.partition(": ")
    for branch in BRANCHES:
        if head == f"{branch}{_BRANCH_SUFFIX}":
            return branch, [name for name in rest.split(_DATA_SEPARATOR) if name]
    return None, [name for name in label.split(_DATA_SEPARATOR) if name]


def step_infos_from_dag(dag: Any) -> dict[str, StepInfo]:
    """The steps of a DAG built by the factory, from its tasks' manifests and its edge labels.

    Works on the DAG a DAG file defines and on the serialized DAG the api-server and scheduler hold.
    """
    step_tasks = [task for task in dag.tasks if is_step_task_id(task.task_id)]
    manifests = {task.task_id: _manifest(dag, task) for task in step_tasks}
    branches: dict[str, dict[str, list[str]]] = {name: {"if": [], "else": []} for name in manifests}
    data_upstream: dict[str, set[str]] = {name: set() for name in manifests}
    for task in step_tasks:
        for upstream_id in task.upstream_task_ids:
            branch, data = parse_edge_label(_label(dag, upstream_id, task.task_id))
            if branch is not None and upstream_id in branches:
                branches[upstream_id][branch].append(task.task_id)
            if data:
                data_upstream[task.task_id].add(upstream_id)
    return {
        task.task_id: StepInfo(
            name=task.task_id,
            kind=manifests[task.task_id]["kind"],
            digest=manifests[task.task_id]["digest"],
            upstream=frozenset(name for name in task.upstream_task_ids if name in manifests),
            if_steps=tuple(sorted(branches[task.task_id]["if"])),
            else_steps=tuple(sorted(branches[task.task_id]["else"])),
            data_upstream=frozenset(data_upstream[task.task_id]),
            sources=_sources(task),
        )
        for task in step_tasks
    }


def _sources(task: Any) -> Mapping[str, Any] | None:
    """A step task's ``mlpipe_sources`` (None for a DAG built before it existed, or truncated)."""
    sources = getattr(task, SOURCES_ATTRIBUTE, None)
    return sources if isinstance(sources, Mapping) else None


def _manifest(dag: Any, task: Any) -> Mapping[str, str]:
    manifest = getattr(task, MANIFEST_ATTRIBUTE, None)
    if isinstance(manifest, str) and manifest.startswith("Truncated."):
        raise SelectiveExecutionError(
            f"DAG {dag.dag_id!r}: the step manifest of task {task.task_id!r} was truncated by Airflow "
            "([core] max_templated_field_length is set too low: a manifest needs about 120 characters); raise it"
        )
    if not isinstance(manifest, Mapping) or "digest" not in manifest or "kind" not in manifest:
        raise SelectiveExecutionError(
            f"DAG {dag.dag_id!r} is not an mlpipe pipeline (task {task.task_id!r} is not a step)"
        )
    return {"kind": str(manifest["kind"]), "digest": str(manifest["digest"])}


def _label(dag: Any, upstream_id: str, downstream_id: str) -> str | None:
    info = dag.get_edge_info(upstream_id, downstream_id) or {}
    label = info.get("label") if isinstance(info, Mapping) else None
    return label if isinstance(label, str) else None
