"""Run a DAG in this process on the embedded metadata DB (SQLite by default): what ``mlpipe run`` does.

It works like Airflow's ``DAG.test()`` (each task runs in process through the Task SDK, the scheduling
decisions are Airflow's own ``DagRun.update_state``) with two differences that matter here:

- only the DAG being run is synced to the DB, instead of re-parsing the whole dags folder each time;
- the caller may prepare the run in the transaction that creates it (``prepare``): selective execution
  records reused steps there, before any scheduling decision is taken.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import DAG
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# The bundle Airflow gives the dags folder by default; local runs register their DAG under it.
LOCAL_BUNDLE = "dags-folder"
# How long to wait before looking again when every unfinished task waits (e.g. for a retry delay).
IDLE_POLL_SECONDS = 0.5

PrepareRun = Callable[["DagRun", "Session"], None]
# Called after each task with its id, its final state and its duration in seconds.
TaskCallback = Callable[[str, str, "float | None"], None]


@dataclass
class TaskResult:
    """One task instance of a finished local run.

    :param task_id: the step name.
    :param state: the final state (``success``, ``failed``, ``skipped``, ``upstream_failed``...).
    :param return_value: the task's XCom ``return_value`` (a step record: references, never data).
    :param note: the task instance note (a reused step says where its outputs came from).
    """

    task_id: str
    state: str | None
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    try_number: int
    return_value: Any = None
    note: str | None = None
    priority_weight: int = 0


@dataclass
class RunResult:
    """The outcome of a DAG run: its state and every task instance."""

    dag_id: str
    run_id: str
    state: str
    conf: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskResult] = field(default_factory=list)

    def task(self, task_id: str) -> TaskResult:
        """The task instance of step ``task_id``."""
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise KeyError(f"run {self.run_id} has no task {task_id!r}")


def ensure_database() -> None:
    """Create or migrate the metadata DB of ``$AIRFLOW_HOME`` if it is not at Airflow's head revision.

    A DB that is already current costs one query, so every ``mlpipe`` command can call this.
    """
    from airflow import settings
    from airflow.utils import db
    from airflow.utils.session import create_session

    if settings.Session is None:
        settings.configure_orm()
    with create_session() as session:
        current = db._get_current_revision(session)
    head = db._get_script_object().get_current_head()
    if current == head:
        return
    log.info("Migrating the Airflow metadata DB (%s -> %s)", current, head)
    db.initdb()


def sync_dag(dag: DAG, *, session: Session) -> None:
    """Serialize ``dag`` into the metadata DB (a new DAG version only if it changed)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db(session=session)
    session.flush()  # the DAG row refers to its bundle's row
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, LOCAL_BUNDLE, None, session=session)


def create_run(
    dag: DAG,
    *,
    conf: Mapping[str, Any] | None = None,
    note: str | None = None,
    prepare: PrepareRun | None = None,
    run_id: str | None = None,
) -> str:
    """Create a running DAG run of ``dag`` and return its run id.

    :param dag: the DAG (it is synced to the DB first).
    :param conf: the run's conf: pipeline parameters, validated against the DAG's params.
    :param note: the run's note.
    :param prepare: called with the new run and the session before the commit, to set task states
        and XComs atomically with the run's creation.
    :param run_id: the run id (default: Airflow's ``manual__<time>``).
    """
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.dagruns import create_manual_run
    from airflow_provider_mlpipe.local_runs import record_driver

    with create_session() as session:
        sync_dag(dag, session=session)
    with create_session() as session:
        scheduler_dag = DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
        if scheduler_dag is None:
            raise RuntimeError(f"DAG {dag.dag_id!r} was not serialized to the metadata DB")
        run = create_manual_run(
            scheduler_dag,
            conf=dict(conf or {}),
            note=note,
            state="running",
            triggered_by="cli",
            triggering_user_name="mlpipe",
            session=session,
            run_id=run_id,
        )
        if prepare is not None:
            prepare(run, session)
        # Before the commit: a run that exists always has a driver record (see local_runs).
        record_driver(run.dag_id, run.run_id)
        return run.run_id


def drive_run(dag: DAG, run_id: str, *, on_task_done: TaskCallback | None = None) -> None:
    """Schedule and run the tasks of run ``run_id`` in this process until the run finishes.

    :param dag: the DAG whose tasks run.
    :param run_id: the run, created by :func:`create_run`.
    :param on_task_done: called after each task that ran (progress output).
    """
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State
    from sqlalchemy import select

    from airflow_provider_mlpipe.dagruns import note_cache_hits, note_failed_steps, state_text
    from airflow_provider_mlpipe.local_logs import task_log
    from airflow_provider_mlpipe.local_runs import forget_driver, interrupted

    this_run = select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)
    with create_session() as session, interrupted(dag.dag_id, run_id, session=session):
        run = session.scalar(this_run)
        if run is None:
            raise RuntimeError(f"no run {run_id!r} of DAG {dag.dag_id!r}")
        scheduler_dag = DBDagBag().get_dag_for_run(run, session=session)
        previous_states: dict[str, Any] = {}
        while True:
            session.expire_all()
            # Read afresh: the task runner's sessions detach the run object, and another process may
            # have stopped the run meanwhile (``mlpipe executions stop``).
            run = session.scalar(this_run)
            if run is None or run.state != DagRunState.RUNNING:
                break
            run.dag = scheduler_dag
            schedulable, _ = run.update_state(session=session)
            # The scheduler's own step: tries counted, empty tasks (the outcome task) marked done.
            run.schedule_tis(schedulable, session=session)
            session.commit()
            scheduled = scheduled_task_instances(dag.dag_id, run_id, session=session)
            if not scheduled:
                states = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
                # Sleep only when nothing moved (e.g. a retry delay runs): a failure that marks the
                # tasks after it upstream_failed one layer per pass must not wait between layers.
                if run.state == DagRunState.RUNNING and states == previous_states:
                    log.debug(
                        "Waiting for %s", [t for t, state in states.items() if state not in State.finished]
                    )
                    time.sleep(IDLE_POLL_SECONDS)
                previous_states = states
                continue
            for ti in scheduled:
                try:
                    # The task's log goes to its file under [logging] base_log_folder, as on a worker.
                    with signal_handlers_from_any_thread(), task_log(ti):
                        _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                except Exception:  # the task's failure is recorded in its state; go on like the scheduler
                    log.exception("Task %s failed", ti.task_id)
                if on_task_done is not None:
                    # The task runner ends the task in its own session: read the outcome afresh.
                    state, duration = session.execute(
                        select(TaskInstance.state, TaskInstance.duration).where(TaskInstance.id == ti.id)
                    ).one()
                    on_task_done(ti.task_id, state_text(state) or "none", duration)
    # What the scheduler's listener does (each failed step's reason goes into its note); in a new
    # session, as the task runner's own sessions leave this one's run detached.
    with create_session() as session:
        finished = session.scalar(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id))
        if finished is not None:
            note_failed_steps(finished, session=session)
            note_cache_hits(finished, session=session)
    forget_driver(dag.dag_id, run_id)


def scheduled_task_instances(dag_id: str, run_id: str, *, session: Session) -> list[TaskInstance]:
    """The scheduled task instances of a run, without their run loaded.

    The task runner merges the task instance it is given into its own session (in this thread, the
    same scoped session), and with it a loaded ``ti.dag_run``: a run read before the task started
    would write its old state back over a stop made meanwhile by another process. So the session is
    emptied first, and the run is not loaded with the task instances.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import lazyload

    session.expunge_all()
    query = (
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.state == TaskInstanceState.SCHEDULED,
        )
        .options(lazyload(TaskInstance.dag_run))
    )
    return list(session.scalars(query))


@contextmanager
def signal_handlers_from_any_thread() -> Iterator[None]:
    """Let the Task SDK's task runner be called from a thread other than the main one.

    The runner installs a SIGTERM handler so that a killed worker stops its task cleanly; Python only
    allows that in the main thread. An in-process local run has no worker to kill, so from another
    thread the install is skipped (the main thread's own handlers are left as they are).
    """
    if threading.current_thread() is threading.main_thread():
        yield
        return
    original = signal.signal

    def install(signum: int, handler: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            return original(signum, handler)
        return signal.getsignal(signum)

    signal.signal = install  # type: ignore[assignment]
    try:
        yield
    finally:
        signal.signal = original


def collect_result(dag_id: str, run_id: str) -> RunResult:
    """The state, conf and steps (task instances with their return values and notes) of a run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mlpipe.dagruns import pipeline_order, read_step_records, state_text
    from airflow_provider_mlpipe.selective.manifest import is_step_task_id

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise RuntimeError(f"no run {run_id!r} of DAG {dag_id!r}")
        values = read_step_records(dag_id, run_id, session=session)
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        tasks = [
            TaskResult(
                task_id=ti.task_id,
                state=state_text(ti.state),
                start_date=ti.start_date,
                end_date=ti.end_date,
                duration=ti.duration,
                try_number=ti.try_number,
                return_value=values.get(ti.task_id),
                note=ti.note,
                priority_weight=ti.priority_weight or 0,
            )
            for ti in instances
            if is_step_task_id(ti.task_id)
        ]
        return RunResult(
            dag_id=dag_id,
            run_id=run_id,
            state=state_text(run.state) or "none",
            conf=dict(run.conf or {}),
            tasks=sorted(tasks, key=pipeline_order),
        )


def run_dag_locally(
    dag: DAG,
    conf: Mapping[str, Any] | None = None,
    *,
    note: str | None = None,
    prepare: PrepareRun | None = None,
) -> RunResult:
    """Create a run of ``dag``, run all its tasks in this process, and return the outcome.

    :param dag: the DAG to run.
    :param conf: the run's conf (pipeline parameters).
    :param note: the run's note.
    :param prepare: see :func:`create_run`.
    """
    ensure_database()
    run_id = create_run(dag, conf=conf, note=note, prepare=prepare)
    drive_run(dag, run_id)
    return collect_result(dag.dag_id, run_id)
