"""DAG runs in the metadata DB: creating a manual run, and reading the step records of a run.

A step record is the XCom ``return_value`` of a step (output references, digest, parameters read,
metadata). Local runs, selective runs and the executions API create and read runs the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

RETURN_VALUE = "return_value"


def state_text(state: Any) -> str | None:
    """A run or task state as plain text: the DB gives enum members or strings depending on the query."""
    return None if state is None else str(getattr(state, "value", state))


def pipeline_order(task: Any) -> tuple[int, str]:
    """Sort key for task instances that puts every step after the steps upstream of it.

    Airflow's default priority weight of a task is one plus the number of tasks downstream of it, so
    a step always weighs more than any step after it.
    """
    return -(task.priority_weight or 0), task.task_id


def read_step_records(dag_id: str, run_id: str, *, session: Session) -> dict[str, Any]:
    """Each task's ``return_value`` XCom in run ``run_id`` of ``dag_id``, by task id."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == RETURN_VALUE
    )
    return {row.task_id: XComModel.deserialize_value(row) for row in session.scalars(query)}


def create_manual_run(
    scheduler_dag: Any,
    *,
    conf: dict[str, Any],
    note: str | None,
    state: str,
    triggered_by: str,
    triggering_user_name: str | None,
    session: Session,
) -> DagRun:
    """Create a manual run (no logical date, a unique run id) of the serialized ``scheduler_dag``.

    :param state: ``queued`` for the scheduler to start it, ``running`` for the local runner.
    :param triggered_by: an ``airflow.utils.types.DagRunTriggeredByType`` value.
    """
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = timezone.utcnow()
    run_state = DagRunState(state)
    return scheduler_dag.create_dagrun(
        run_id=DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=None, run_after=now),
        logical_date=None,
        data_interval=None,
        run_after=now,
        conf=conf,
        run_type=DagRunType.MANUAL,
        triggered_by=DagRunTriggeredByType(triggered_by),
        triggering_user_name=triggering_user_name,
        state=run_state,
        start_date=now if run_state == DagRunState.RUNNING else None,
        note=note,
        session=session,
    )
