"""Audit-log entries for selective runs, in Airflow's own audit log (the ``log`` table that the UI's
"Audit Log" and ``GET /api/v2/eventLogs`` show).

Airflow's trigger endpoint records who triggered a run through its ``action_logging`` dependency; a
selective run made by the plugin endpoint gets the same kind of entry, added to the transaction that
creates the run, so there is an entry exactly when there is a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

    from airflow_provider_mlpipe.selective.model import SelectivePlan

SELECTIVE_RUN_EVENT = "mlpipe.selective_run"


def record_selective_run(
    run: DagRun,
    plan: SelectivePlan,
    overrides: Mapping[str, Any],
    *,
    user_name: str | None,
    session: Session,
) -> None:
    """Add an audit-log entry for the selective run ``run`` to ``session`` (the caller commits).

    :param run: the new run.
    :param plan: what it does with each step.
    :param overrides: the parameter values the user changed (the rest are the reference run's).
    :param user_name: who asked for it, as the auth manager names them.
    """
    from airflow.models import Log

    extra = {
        "selected_steps": list(plan.selected),
        "source_run_id": plan.source_run_id,
        "reused_steps": sorted(plan.reused),
        "parameters": dict(overrides),
        "method": "POST",
    }
    session.add(
        Log(
            event=SELECTIVE_RUN_EVENT,
            owner=user_name or "anonymous",
            owner_display_name=user_name,
            dag_id=run.dag_id,
            run_id=run.run_id,
            extra=json.dumps(extra, default=str),
        )
    )
