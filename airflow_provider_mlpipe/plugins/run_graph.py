"""What the selective-run view shows of one DAG run: the pipeline's steps and their dependencies, what
became of each step in that run, and the pipeline's typed parameters.

Read from the metadata DB in the api-server: the latest serialized DAG (the definition a new selective
run would use), the run's task instances (state, try number, note), its step records (XCom
``return_value``: where a reused step's outputs come from) and failure records (XCom
``mlpipe_failure``, written by a failing step when the provider records why; absent otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.dagruns import FAILURE_KEY, read_step_records, state_text
from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.selective.model import CONF_KEY, FINISHED_RUN_STATES, StepInfo

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

REUSED_NOTE_PREFIX = "reused from run "
# Task states in which a task process started (or is about to run again after one did).
RAN_STATES = frozenset(
    {"success", "failed", "running", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}
)
NOT_RUN_STATES = frozenset({"skipped", "upstream_failed", "removed"})


def not_a_pipeline_reason(dag: Any) -> str | None:
    """Why ``dag`` is not an mlpipe pipeline, or None if it is one.

    Airflow shows a plugin's DAG-run tab on every DAG, so the view asks this first.
    """
    from airflow_provider_mlpipe.factory import MLPIPE_TAG
    from airflow_provider_mlpipe.selective.runs import step_infos_from_dag

    if MLPIPE_TAG not in set(dag.tags or ()):
        return f"DAG {dag.dag_id!r} is not an mlpipe pipeline (it has no {MLPIPE_TAG!r} tag)"
    try:
        step_infos_from_dag(dag)
    except SelectiveExecutionError as error:
        return str(error)
    return None


def step_fate(state: str | None, note: str | None, reused: bool) -> str:
    """What became of a step in a run: ``ran``, ``reused``, ``reused_skipped``, ``not_run`` or ``pending``.

    :param state: the task instance's state.
    :param note: its note (a reused step's says ``reused from run X``).
    :param reused: whether the run's selective block lists it as reused.
    """
    reused_note = (note or "").startswith(REUSED_NOTE_PREFIX)
    if state == "skipped" and reused_note:
        return "reused_skipped"
    if reused or (state == "success" and reused_note):
        return "reused"
    if state in NOT_RUN_STATES:
        return "not_run"
    if state in RAN_STATES:
        return "ran"
    return "pending"


def edge_label(upstream: StepInfo, downstream: str) -> str | None:
    """The label of the edge ``upstream -> downstream``: a condition step's branch, if it is one."""
    if downstream in upstream.if_steps:
        return "true"
    if downstream in upstream.else_steps:
        return "false"
    return None


def _failure_records(dag_id: str, run_id: str, *, session: Session) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == FAILURE_KEY
    )
    return {row.task_id: XComModel.deserialize_value(row) for row in session.scalars(query)}


def _failure_reason(record: Any) -> str | None:
    if isinstance(record, Mapping) and record.get("reason"):
        return str(record["reason"])
    return None


def run_graph(dag: Any, run: DagRun, *, session: Session) -> dict[str, Any]:
    """The view's data for run ``run`` of the pipeline ``dag`` (see the module docstring).

    :param dag: the latest serialized DAG of the pipeline.
    :param run: the run the view was opened on.
    :param session: a DB session to read with.
    """
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    from airflow_provider_mlpipe.selective.runs import step_infos_from_dag

    steps = step_infos_from_dag(dag)
    block = (run.conf or {}).get(CONF_KEY)
    block = block if isinstance(block, Mapping) else {}
    reused_steps = set(block.get("reused_steps") or ())
    instances = {
        ti.task_id: ti
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.map_index == -1,
            )
        )
    }
    records = read_step_records(run.dag_id, run.run_id, session=session)
    failures = _failure_records(run.dag_id, run.run_id, session=session)
    return {
        "dag_id": run.dag_id,
        "pipeline": True,
        "run": _run_summary(run, block),
        "steps": [
            _step(info, instances.get(name), records.get(name), failures.get(name), reused_steps, block)
            for name, info in steps.items()
        ],
        "edges": [
            {"from": dependency, "to": name, "label": edge_label(steps[dependency], name)}
            for name, info in steps.items()
            for dependency in sorted(info.upstream)
            if dependency in steps
        ],
        "params": _params(dag, run),
    }


def _run_summary(run: DagRun, block: Mapping[str, Any]) -> dict[str, Any]:
    state = state_text(run.state)
    return {
        "run_id": run.run_id,
        "state": state,
        "note": run.note,
        "finished": state in FINISHED_RUN_STATES,
        "selective": dict(block) or None,
    }


def _step(
    info: StepInfo,
    ti: Any,
    record: Any,
    failure: Any,
    reused_steps: set[str],
    block: Mapping[str, Any],
) -> dict[str, Any]:
    state = state_text(ti.state) if ti is not None else None
    note = ti.note if ti is not None else None
    fate = step_fate(state, note, info.name in reused_steps)
    record = record if isinstance(record, Mapping) else {}
    source = record.get("source_run_id")
    if fate == "reused_skipped":  # a skipped step has no record: its source is the run's reference
        source = block.get("source_run_id")
    metadata = record.get("metadata") if isinstance(record.get("metadata"), Mapping) else {}
    return {
        "name": info.name,
        "kind": info.kind,
        "upstream": sorted(info.upstream),
        "if_steps": list(info.if_steps),
        "else_steps": list(info.else_steps),
        "state": state,
        "try_number": ti.try_number if ti is not None else None,
        "note": note,
        "fate": fate,
        "source_run_id": source if fate in ("reused", "reused_skipped") else None,
        "origin_run_id": record.get("origin_run_id") if fate == "reused" else None,
        "failure_reason": _failure_reason(failure),
        "outcome": metadata.get("outcome") if info.kind == "condition" else None,
    }


def _params(dag: Any, run: DagRun) -> dict[str, Any]:
    """Each param's JSON schema, description, default, and the value it had in ``run``."""
    conf = run.conf or {}
    params = {}
    for name, param in dag.params.items():  # (name, Param) pairs on a serialized DAG
        spec = param.dump()
        params[name] = {
            "schema": spec.get("schema") or {},
            "description": spec.get("description"),
            "default": spec.get("value"),
            "has_run_value": name in conf,
            "run_value": conf.get(name),
        }
    return params
