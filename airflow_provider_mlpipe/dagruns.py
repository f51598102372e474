"""DAG runs in the metadata DB: creating a manual run, reading the step records of a run, and noting
why its steps failed.

A step record is the XCom ``return_value`` of a step (output references, digest, parameters read,
metadata); a failed step also has the XCom ``mlpipe_failure`` (its reason and try number, see
:mod:`airflow_provider_mlpipe.operators.failures`). Local runs, selective runs and the executions API
create and read runs the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

RETURN_VALUE = "return_value"
# The XCom a failing step pushes: {"reason": text, "try_number": n}.
FAILURE_KEY = "mlpipe_failure"
# Airflow's run and task instance notes are String(1000) columns (and the REST API checks the length).
MAX_NOTE_CHARS = 1000


def state_text(state: Any) -> str | None:
    """A run or task state as plain text: the DB gives enum members or strings depending on the query."""
    return None if state is None else str(getattr(state, "value", state))


def pipeline_order(task: Any) -> tuple[int, str]:
    """Sort key for task instances that puts every step after the steps upstream of it.

    Airflow's default priority weight of a task is one plus the number of tasks downstream of it, so
    a step always weighs more than any step after it.
    """
    return -(task.priority_weight or 0), task.task_id


def read_step_records(
    dag_id: str,
    run_id: str,
    *,
    session: Session,
    key: str = RETURN_VALUE,
    task_ids: Collection[str] | None = None,
) -> dict[str, Any]:
    """Each task's XCom ``key`` (by default its step record) in run ``run_id`` of ``dag_id``, by task id.

    :param task_ids: only these tasks' (default: every task's).
    """
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    # The two columns, not XCom objects: each object would load its run with it (a joined load),
    # decoding the run's conf once per row.
    query = select(XComModel.task_id, XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key
    )
    if task_ids is not None:
        query = query.where(XComModel.task_id.in_(sorted(task_ids)))
    return {row.task_id: XComModel.deserialize_value(row) for row in session.execute(query)}


def create_manual_run(
    scheduler_dag: Any,
    *,
    conf: dict[str, Any],
    note: str | None,
    state: str,
    triggered_by: str,
    triggering_user_name: str | None,
    session: Session,
    run_id: str | None = None,
) -> DagRun:
    """Create a manual run (no logical date, a unique run id) of the serialized ``scheduler_dag``.

    :param state: ``queued`` for the scheduler to start it, ``running`` for the local runner.
    :param triggered_by: an ``airflow.utils.types.DagRunTriggeredByType`` value.
    :param run_id: the run id (default: Airflow's ``manual__<time>``).
    """
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = timezone.utcnow()
    run_state = DagRunState(state)
    return scheduler_dag.create_dagrun(
        run_id=run_id or DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=None, run_after=now),
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


def fit_note(text: str) -> str:
    """``text`` cut to fit a note, keeping its start and its end."""
    if len(text) <= MAX_NOTE_CHARS:
        return text
    head = MAX_NOTE_CHARS // 3
    return f"{text[:head]} [...] {text[-(MAX_NOTE_CHARS - head - 7) :]}"


def failure_reason_of(failure: Any) -> str | None:
    """The reason in an ``mlpipe_failure`` XCom value, if it holds one."""
    reason = failure.get("reason") if isinstance(failure, Mapping) else None
    return reason if isinstance(reason, str) and reason else None


def failure_note(failure: Any) -> str | None:
    """The note of a failed task instance, from its ``mlpipe_failure`` XCom value.

    A multi-line reason (a script's last output lines) goes in a code block, which the Airflow UI
    shows line by line (a note is Markdown).
    """
    reason = failure_reason_of(failure)
    if reason is None:
        return None
    first, _, rest = reason.partition("\n")
    head = f"Failed on try {failure.get('try_number', '?')}: {first}"
    room = MAX_NOTE_CHARS - len(head) - len("\n```\n\n```")
    if not rest.strip() or room < 80:
        return fit_note(head if not rest.strip() else f"{head} {rest}")
    body = rest if len(rest) <= room else "[...]\n" + rest[-(room - 6) :]
    return f"{head}\n```\n{body}\n```"


def note_failed_steps(run: DagRun, *, session: Session) -> list[str]:
    """Note why each failed step of ``run`` failed, on its task instance (the Airflow UI shows it).

    Only task instances that failed, have an ``mlpipe_failure`` XCom and no note yet are changed
    (a user's note is kept). Adds to ``session``; the caller commits. Returns the steps noted.
    """
    from airflow.utils.state import TaskInstanceState

    failures = read_step_records(run.dag_id, run.run_id, session=session, key=FAILURE_KEY)
    noted = []
    for ti in run.get_task_instances(state=[TaskInstanceState.FAILED], session=session):
        note = failure_note(failures.get(ti.task_id)) if ti.task_id in failures else None
        if note is not None and not ti.note:
            ti.note = note
            noted.append(ti.task_id)
    if noted:
        session.flush()
    return noted


def note_cache_hits(run: DagRun, *, session: Session) -> list[str]:
    """Note on each step of ``run`` that took its outputs from the step cache where they come from.

    A task cannot write its own note, so this runs where notes are written: the scheduler's listener
    when the run ends, and the local runner. A note already there is kept. Returns the steps noted.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    # Only the steps that ran in this run (try 0: a selective run's reused steps, noted already),
    # chosen by the query, so that a selective run's end, in the scheduler's loop, costs the same however
    # many steps it reused (loading every task instance of a 100-step run took about 15 ms).
    ran = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == run.dag_id,
            TaskInstance.run_id == run.run_id,
            TaskInstance.state == TaskInstanceState.SUCCESS,
            TaskInstance.try_number > 0,
        )
    ).all()
    if not ran:
        return []
    records = read_step_records(run.dag_id, run.run_id, session=session, task_ids={ti.task_id for ti in ran})
    noted = []
    for ti in ran:
        record = records.get(ti.task_id)
        cache = record.get("cache") if isinstance(record, Mapping) else None
        note = cache.get("note") if isinstance(cache, Mapping) and cache.get("hit") else None
        if isinstance(note, str) and not ti.note:
            ti.note = fit_note(note)
            noted.append(ti.task_id)
    if noted:
        session.flush()
    return noted
