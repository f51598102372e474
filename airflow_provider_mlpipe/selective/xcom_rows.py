"""Write many XComs of one run in one statement: the reused steps' records of a selective run.

Airflow's ``XComModel.set`` writes one XCom: it looks up the run's id, deletes the XCom it replaces
(a statement that flushes the session first) and flushes the new row; three round trips and a flush
per reused step, so the request that creates a selective run grew with the number of steps it
reuses. :func:`add_xcoms` writes the same rows (the same columns with the same values) for all of
them at once. It depends on what ``XComModel.set`` writes, which is Airflow's internal business:
``tests/selective/test_xcom_rows.py`` compares the two row by row, so an Airflow upgrade that changes
it fails there, loudly, before a selective run writes rows Airflow no longer reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session


def add_xcoms(
    run: DagRun, key: str, values: Mapping[str, Any], *, session: Session, replace: bool = True
) -> None:
    """Store ``values`` (task id -> value) as the XComs ``key`` of those tasks in ``run``.

    Like ``XComModel.set(..., serialize=False)`` for each task (unmapped tasks, plain JSON values as
    the Task SDK pushes them), an XCom already there is replaced. Runs its statements in ``session``;
    the caller commits.

    :param run: the run (already in the database: its id is the XComs' key).
    :param key: the XCom key.
    :param values: the value of each task's XCom, by task id.
    :param replace: delete those tasks' XComs ``key`` first; False only where none can be there yet
        (a run created in this transaction).
    """
    from airflow.models.xcom import XComModel
    from sqlalchemy import delete, insert

    if not values:
        return
    if run.id is None:
        session.flush()  # the run's id is part of each XCom's primary key
    if replace:
        session.execute(
            delete(XComModel).where(
                XComModel.dag_run_id == run.id,
                XComModel.key == key,
                XComModel.map_index == -1,
                XComModel.task_id.in_(sorted(values)),
            )
        )
    # Rows, not objects: one multi-row INSERT, without the unit of work's bookkeeping per object (a flush
    # of 99 XComModel objects took 18 to 26 ms on Postgres, most of a selective run's own writes).
    session.execute(
        insert(XComModel),
        [
            {
                "dag_run_id": run.id,
                "key": key,
                "value": value,
                "run_id": run.run_id,
                "task_id": task_id,
                "dag_id": run.dag_id,
                "map_index": -1,
                "dag_result": False,
            }
            for task_id, value in values.items()
        ],
    )
