"""Executions in this process, on the embedded metadata DB (SQLite in ``$AIRFLOW_HOME`` by default).

``start`` runs the whole execution before it returns (as SageMaker's local mode does), and unlike
SageMaker's local mode it supports selective execution. Executions started from several threads of
one process run one after the other: the in-process task runner is not meant to run concurrently.

As on an Airflow worker, each task's log is written under ``$AIRFLOW_HOME/logs`` and the pipeline's
folder is importable; Airflow's own logs stay off the console unless ``verbose``. A run whose process
was killed is marked failed by the next session that looks (see :mod:`airflow_provider_mlpipe.local_runs`).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mlpipe.client.executions import (
    ExecutionDescription,
    StepExecution,
    describe_run,
    describe_step,
)
from airflow_provider_mlpipe.exceptions import ExecutionNotFoundError, PipelineNotFoundError
from airflow_provider_mlpipe.selective.manifest import is_step_task_id

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

    from airflow_provider_mlpipe.local_runner import TaskCallback
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig, SelectivePlan

_RUN_LOCK = threading.Lock()

Method = TypeVar("Method", bound=Callable[..., Any])


def _console_quiet_unless_verbose(method: Method) -> Method:
    """Run a session method with Airflow's own logs kept off the console unless the session is verbose."""

    @functools.wraps(method)
    def wrapper(self: LocalSession, *args: Any, **kwargs: Any) -> Any:
        from airflow_provider_mlpipe.local_logs import console

        with console(verbose=self.verbose):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def add_to_import_path(folder: Any) -> None:
    """Make modules in ``folder`` importable, as an Airflow worker does with the dags folder (appended,
    so installed packages keep their names)."""
    if folder is not None and str(folder) not in sys.path:
        sys.path.append(str(folder))


class LocalSession:
    """Executions run in this process through Airflow, on the embedded metadata DB.

    :param on_task_done: called after each task with the task id, its state and its duration
        (the ``mlpipe`` command prints progress with it).
    :param verbose: show Airflow's own logs and the tasks' logs on the console too (they are always
        in the task log files under ``$AIRFLOW_HOME/logs``).
    """

    def __init__(self, on_task_done: TaskCallback | None = None, *, verbose: bool = False) -> None:
        self.on_task_done = on_task_done
        self.verbose = verbose
        self._database_ready = False

    def _ensure_database(self) -> None:
        """Once per session: create or migrate the embedded DB, and fail the runs whose process ended."""
        if not self._database_ready:
            from airflow_provider_mlpipe.local_runner import ensure_database
            from airflow_provider_mlpipe.local_runs import reap_orphaned_runs

            ensure_database()
            reap_orphaned_runs()
            self._database_ready = True

    @_console_quiet_unless_verbose
    def start(
        self,
        pipeline: Pipeline,
        *,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        note: str | None = None,
        run_id: str | None = None,
        no_cache: bool = False,
    ) -> str:
        from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
        from airflow_provider_mlpipe.factory import build_dag
        from airflow_provider_mlpipe.local_runner import create_run, drive_run

        given = dict(parameters or {})
        flags = {NO_CACHE_CONF_KEY: True} if no_cache else {}
        dag = build_dag(pipeline)
        # A worker has the dags folder on sys.path: a spec's "module:function" beside it imports.
        add_to_import_path(pipeline.base_dir)
        with _RUN_LOCK:
            self._ensure_database()
            if selective_execution_config is None:
                pipeline.resolve_parameters(given)  # refuse bad values before creating anything
                run_id = create_run(dag, conf={**given, **flags}, note=note, run_id=run_id)
            else:
                plan = self._plan(dag, selective_execution_config, given)

                def record_reused_steps(run: DagRun, session: Session) -> None:
                    from airflow_provider_mlpipe.selective.runs import apply_plan

                    apply_plan(plan, run, session=session, new_run=True)

                run_id = create_run(
                    dag,
                    conf={**plan.conf(), **flags},
                    note=note or plan.note(),
                    prepare=record_reused_steps,
                    run_id=run_id,
                )
            drive_run(dag, run_id, on_task_done=self.on_task_done)
        return run_id

    @staticmethod
    def _plan(dag: Any, config: SelectiveExecutionConfig, overrides: Mapping[str, Any]) -> SelectivePlan:
        from airflow.utils.session import create_session

        from airflow_provider_mlpipe.selective.runs import plan_for_dag

        with create_session() as session:
            return plan_for_dag(dag, config, overrides, session=session)

    @_console_quiet_unless_verbose
    def list_executions(
        self,
        pipeline_name: str,
        *,
        limit: int = 20,
        status: str | Sequence[str] | None = None,
        since: datetime | str | None = None,
    ) -> list[ExecutionDescription]:
        """The pipeline's local executions, newest first; :class:`PipelineNotFoundError` if it never ran here.

        :param status: only executions in this status (or these).
        :param since: only executions started (or queued to start) at or after this time.
        """
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        from airflow_provider_mlpipe.client.filters import checked_limit, checked_since, checked_statuses

        statuses, start = checked_statuses(status), checked_since(since)
        self._ensure_database()
        query = select(DagRun).where(DagRun.dag_id == pipeline_name)
        if statuses is not None:
            query = query.where(DagRun.state.in_(statuses))
        if start is not None:
            query = query.where(DagRun.run_after >= start)
        query = query.order_by(DagRun.run_after.desc()).limit(checked_limit(limit))
        with create_session() as session:
            if session.get(DagModel, pipeline_name) is None:
                raise PipelineNotFoundError(f"no pipeline named {pipeline_name!r} has run in local mode here")
            return [self._description(run, session, with_reason=False) for run in session.scalars(query)]

    @_console_quiet_unless_verbose
    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        from airflow.utils.session import create_session

        with create_session() as session:
            return self._description(self._run(pipeline_name, execution_id, session), session)

    def _run(self, pipeline_name: str, execution_id: str, session: Session) -> DagRun:
        from airflow.models.dagrun import DagRun
        from sqlalchemy import select

        self._ensure_database()
        run = session.scalar(
            select(DagRun).where(DagRun.dag_id == pipeline_name, DagRun.run_id == execution_id)
        )
        if run is None:
            raise ExecutionNotFoundError(f"pipeline {pipeline_name!r} has no execution {execution_id!r}")
        return run

    def _description(
        self, run: DagRun, session: Session, *, with_reason: bool = True
    ) -> ExecutionDescription:
        from airflow.utils.state import DagRunState

        # Why a run failed is said by its steps: only a failed run needs them.
        failed = with_reason and run.state == DagRunState.FAILED
        steps = self._steps(run.dag_id, run.run_id, session) if failed else None
        return describe_run(
            run.dag_id, run.run_id, run.state, run.start_date, run.end_date, run.conf, run.note, steps
        )

    @_console_quiet_unless_verbose
    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        from airflow.utils.session import create_session

        with create_session() as session:
            self._run(pipeline_name, execution_id, session)
            return self._steps(pipeline_name, execution_id, session)

    @_console_quiet_unless_verbose
    def describe_step(self, pipeline_name: str, execution_id: str, step_name: str) -> StepExecution:
        from airflow.utils.session import create_session

        with create_session() as session:
            self._run(pipeline_name, execution_id, session)
            for step in self._steps(pipeline_name, execution_id, session, only=step_name):
                return step
        raise ExecutionNotFoundError(
            f"execution {execution_id} of pipeline {pipeline_name!r} has no step {step_name!r}"
        )

    @staticmethod
    def _steps(
        pipeline_name: str, execution_id: str, session: Session, *, only: str | None = None
    ) -> list[StepExecution]:
        """The steps of a run (internal tasks left out), in the pipeline's order."""
        from airflow.models.taskinstance import TaskInstance
        from sqlalchemy import select

        from airflow_provider_mlpipe.dagruns import FAILURE_KEY, pipeline_order, read_step_records

        query = select(TaskInstance).where(
            TaskInstance.dag_id == pipeline_name, TaskInstance.run_id == execution_id
        )
        if only is not None:
            query = query.where(TaskInstance.task_id == only)
        instances = sorted(session.scalars(query), key=pipeline_order)
        records = read_step_records(pipeline_name, execution_id, session=session)
        failures = read_step_records(pipeline_name, execution_id, session=session, key=FAILURE_KEY)
        return [
            describe_step(
                ti.task_id,
                ti.state,
                ti.start_date,
                ti.end_date,
                ti.try_number,
                ti.note,
                records.get(ti.task_id),
                failures.get(ti.task_id),
            )
            for ti in instances
            if is_step_task_id(ti.task_id)
        ]

    @_console_quiet_unless_verbose
    def default_parameters(self, pipeline_name: str) -> dict[str, Any]:
        from airflow.models.dagbag import DBDagBag
        from airflow.utils.session import create_session

        from airflow_provider_mlpipe.selective.runs import parameter_defaults

        self._ensure_database()
        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(pipeline_name, session=session)
            if dag is None:
                raise ExecutionNotFoundError(f"pipeline {pipeline_name!r} has never run here")
            return parameter_defaults(dag)

    @_console_quiet_unless_verbose
    def is_paused(self, pipeline_name: str) -> bool:
        """Always False: a local execution runs in the process that started it, paused or not."""
        return False

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Mark a running local execution failed; a finished one is left as it is.

        Steps not started yet are skipped. The process driving the run (``mlpipe run`` in another
        terminal) lets the step it is running finish, then stops.
        """
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState

        from airflow_provider_mlpipe.local_runs import fail_run

        with create_session() as session:
            run = self._run(pipeline_name, execution_id, session)
            if run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
                fail_run(run, "Stopped on request.", step_reason=None, session=session)
