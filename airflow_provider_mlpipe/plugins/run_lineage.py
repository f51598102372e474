"""What the view's "Lineage" section shows of one run: for each step, what it read and wrote (artifacts
and literal inputs with their digests), its code digest and files, the parameter values it read, its
fingerprint, and where its outputs came from when it was reused or a cache hit.

Read from the run's step records (XCom ``return_value``) in the metadata DB: no artifact store access,
so it answers as fast as the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.dagruns import read_step_records, state_text
from airflow_provider_mlpipe.selective.model import StepInfo

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session


def step_lineage(info: StepInfo, state: str | None, record: Any) -> dict[str, Any]:
    """One step's lineage in a run, from its record (empty lists for a step that did not run)."""
    record = record if isinstance(record, Mapping) else {}
    cache = record.get("cache") if isinstance(record.get("cache"), Mapping) else {}
    inputs = record.get("inputs") if isinstance(record.get("inputs"), Mapping) else {}
    outputs = record.get("outputs") if isinstance(record.get("outputs"), Mapping) else {}
    metadata = record.get("metadata") if isinstance(record.get("metadata"), Mapping) else {}
    model = None
    if info.kind == "register_model" and metadata.get("group") and metadata.get("version"):
        model = {"group": metadata["group"], "version": metadata["version"]}
    return {
        "name": info.name,
        "kind": info.kind,
        "state": state,
        "fingerprint": record.get("fingerprint"),
        "code_digest": record.get("code_digest"),
        "code_files": dict(record.get("code_files") or {}),
        "parameters": dict(record.get("parameters") or {}),
        "cache_hit": bool(cache.get("hit")),
        "source_run_id": record.get("source_run_id"),
        "origin_run_id": record.get("origin_run_id"),
        "inputs": [
            {
                "name": name,
                "kind": item.get("kind"),
                "digest": item.get("digest"),
                "type": item.get("type"),
                "size": item.get("size"),
                "location": item.get("location"),
                "step": item.get("step"),
                "output": item.get("output"),
            }
            for name, item in inputs.items()
            if isinstance(item, Mapping)
        ],
        "outputs": [
            {"name": name, "digest": ref.get("digest"), "type": ref.get("type"), "size": ref.get("size")}
            for name, ref in outputs.items()
            if isinstance(ref, Mapping)
        ],
        "model": model,
    }


def run_lineage(dag: Any, run: DagRun, *, session: Session) -> dict[str, Any]:
    """The lineage of every step of ``run`` (see the module docstring)."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    from airflow_provider_mlpipe.selective.manifest import step_infos_from_dag

    steps = step_infos_from_dag(dag)
    states = {
        ti.task_id: state_text(ti.state)
        for ti in session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        )
    }
    records = read_step_records(run.dag_id, run.run_id, session=session)
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "steps": [step_lineage(info, states.get(name), records.get(name)) for name, info in steps.items()],
    }
