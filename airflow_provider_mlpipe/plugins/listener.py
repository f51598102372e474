"""Scheduler listener: honour a ``selective_execution`` block given in a plain trigger's conf, fail a
selective run whose selected step failed, and note on each failed step's task instance why it failed.

``airflow dags trigger --conf '{"selective_execution": {...}}'`` (or the REST API's plain trigger)
creates a queued run with every task still to do. When the scheduler starts that run, before it
schedules any task, this listener records the reused steps in the scheduler's own transaction, so no
reused step starts a task process. A refused selection fails the run with a note saying why.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """Apply the run's selective block if it has one that was not applied yet."""
    from airflow_provider_mlpipe.selective.plan import is_unapplied_selective_run

    if not is_unapplied_selective_run(dag_run.conf):
        return
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    dag = getattr(dag_run, "dag", None)
    if session is None or dag is None:
        log.error("mlpipe: cannot apply the selective block of run %s: no session or DAG", dag_run.run_id)
        return
    apply_or_fail(dag_run, dag, session)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A selective run whose selected step failed is a failed run (see ``fail_if_a_selected_step_failed``)."""
    from airflow_provider_mlpipe.selective.plan import CONF_KEY

    if not isinstance((dag_run.conf or {}).get(CONF_KEY), dict):
        return
    from sqlalchemy.orm import object_session

    from airflow_provider_mlpipe.selective.runs import fail_if_a_selected_step_failed

    session = object_session(dag_run)
    if session is not None and fail_if_a_selected_step_failed(dag_run, session=session):
        log.warning("mlpipe: selective run %s marked failed: a selected step failed", dag_run.run_id)
    note_failed_steps(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """Note on each failed step's task instance why it failed (see ``note_failed_steps``)."""
    note_failed_steps(dag_run)


def note_failed_steps(dag_run: Any) -> None:
    """Copy each failed step's ``mlpipe_failure`` reason into its task instance's note.

    Runs in the scheduler's transaction; never raises (a listener error must not disturb it).
    """
    from sqlalchemy.orm import object_session

    from airflow_provider_mlpipe import dagruns

    try:
        session = object_session(dag_run)
        if session is not None:
            dagruns.note_failed_steps(dag_run, session=session)
    except Exception:
        log.exception("mlpipe: could not note why the steps of run %s failed", dag_run.run_id)


def apply_or_fail(dag_run: Any, dag: Any, session: Any) -> None:
    """Record the selective plan in ``dag_run``, or fail the run with the reason as its note."""
    from airflow.utils.state import DagRunState

    from airflow_provider_mlpipe.exceptions import MlpipeError
    from airflow_provider_mlpipe.selective.runs import apply_conf_block

    try:
        plan = apply_conf_block(dag_run, dag, session=session)
    except MlpipeError as error:
        log.warning("mlpipe: selective run %s refused: %s", dag_run.run_id, error)
        dag_run.set_state(DagRunState.FAILED)
        dag_run.note = f"Selective execution refused: {error}"
        session.flush()
        return
    log.info("mlpipe: selective run %s: %s", dag_run.run_id, plan.note())
