"""Step records: the XCom ``return_value`` of every step (output references, digest, metadata).

Selective runs, the executions API and local runs all read them the same way, from the metadata DB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RETURN_VALUE = "return_value"


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
