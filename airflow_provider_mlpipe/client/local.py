"""Executions in this process, on the embedded metadata DB (SQLite in ``$AIRFLOW_HOME`` by default).

``start`` runs the whole execution before it returns (as SageMaker's local mode does), and unlike
SageMaker's local mode it supports selective execution. Executions started from several threads of
one process run one after the other: the in-process task runner is not meant to run concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.client.executions import (
    ExecutionDescription,
    StepExecution,
    describe_run,
    describe_step,
)
from airflow_provider_mlpipe.exceptions import ExecutionNotFoundError

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

    from airflow_provider_mlpipe.local_runner import TaskCallback
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig, SelectivePlan

_RUN_LOCK = threading.Lock()


class LocalSession:
    """Executions run in this process through Airflow, on the embedded metadata DB.

    :param on_task_done: called after each task with the task id, its state and its duration
        (the ``mlpipe`` command prints progress with it).
    """

    def __init__(self, on_task_done: TaskCallback | None = None) -> None:
        self.on_task_done = on_task_done
        self._database_ready = False

    def _ensure_database(self) -> None:
        """Create or migrate the embedded DB once per session (not at every call)."""
        if not self._database_ready:
            from airflow_provider_mlpipe.local_runner import ensure_database

            ensure_database()
            self._database_ready = True

    def start(
        self,
        pipeline: Pipeline,
        *,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        note: str | None = None,
    ) -> str:
        from airflow_provider_mlpipe.factory import build_dag
        from airflow_provider_mlpipe.local_runner import create_run, drive_run

        given = dict(parameters or {})
        dag = build_dag(pipeline)
        with _RUN_LOCK:
            self._ensure_database()
            if selective_execution_config is None:
                pipeline.resolve_parameters(given)  # refuse bad values before creating anything
                run_id = create_run(dag, conf=given, note=note)
            else:
                plan = self._plan(dag, selective_execution_config, given)

                def record_reused_steps(run: DagRun, session: Session) -> None:
                    from airflow_provider_mlpipe.selective.runs import apply_plan

                    apply_plan(plan, run, session=session)

                run_id = create_run(
                    dag, conf=plan.conf(), note=note or plan.note(), prepare=record_reused_steps
                )
            drive_run(dag, run_id, on_task_done=self.on_task_done)
        return run_id

    @staticmethod
    def _plan(dag: Any, config: SelectiveExecutionConfig, overrides: Mapping[str, Any]) -> SelectivePlan:
        from airflow.utils.session import create_session

        from airflow_provider_mlpipe.selective.runs import plan_for_dag

        with create_session() as session:
            return plan_for_dag(dag, config, overrides, session=session)

    def list_executions(self, pipeline_name: str, *, limit: int = 20) -> list[ExecutionDescription]:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        self._ensure_database()
        query = (
            select(DagRun)
            .where(DagRun.dag_id == pipeline_name)
            .order_by(DagRun.run_after.desc())
            .limit(limit)
        )
        with create_session() as session:
            return [self._description(run) for run in session.scalars(query)]

    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        from airflow.utils.session import create_session

        with create_session() as session:
            return self._description(self._run(pipeline_name, execution_id, session))

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

    @staticmethod
    def _description(run: DagRun) -> ExecutionDescription:
        return describe_run(
            run.dag_id, run.run_id, run.state, run.start_date, run.end_date, run.conf, run.note
        )

    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        from airflow.utils.session import create_session

        from airflow_provider_mlpipe.local_runner import collect_result

        with create_session() as session:
            self._run(pipeline_name, execution_id, session)
        result = collect_result(pipeline_name, execution_id)  # its tasks come in the pipeline's order
        return [
            describe_step(
                task.task_id,
                task.state,
                task.start_date,
                task.end_date,
                task.try_number,
                task.note,
                task.return_value,
            )
            for task in result.tasks
        ]

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

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Local executions finish before ``start`` returns; a leftover running one is marked failed."""
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState

        with create_session() as session:
            run = self._run(pipeline_name, execution_id, session)
            if run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
                run.set_state(DagRunState.FAILED)
