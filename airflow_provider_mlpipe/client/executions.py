"""The executions API, shared by the Python client and the ``mlpipe`` command.

A :class:`PipelineExecution` is one Airflow DAG run of a pipeline. It talks to a *session*: an
:class:`~airflow_provider_mlpipe.client.rest.AirflowSession` (Airflow's REST API v2 through the
official ``apache-airflow-client``) or a :class:`~airflow_provider_mlpipe.client.local.LocalSession`
(in process, on the embedded metadata DB). Both return the same records.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mlpipe.dagruns import state_text
from airflow_provider_mlpipe.exceptions import ExecutionTimeoutError
from airflow_provider_mlpipe.selective.plan import CONF_KEY

if TYPE_CHECKING:
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig

FINISHED = frozenset({"success", "failed"})


@dataclass(frozen=True)
class ExecutionDescription:
    """One execution (DAG run) of a pipeline.

    :param parameters: the values given to this run (the reference run's for a selective run).
    :param selective_execution: the selective block (selected steps, source run, reused steps), if any.
    """

    pipeline_name: str
    execution_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)
    selective_execution: dict[str, Any] | None = None
    note: str | None = None


@dataclass(frozen=True)
class StepExecution:
    """One step (task instance) of an execution.

    :param attempts: Airflow's try number: 0 for a step that never started (reused or not run).
    :param metadata: what the step reported, e.g. a condition's ``outcome`` or a model version.
    :param outputs: the output references (URI, digest, type, size), never the data.
    :param source_run_id: for a reused step, the run its outputs come from.
    """

    step_name: str
    status: str | None
    start_time: datetime | None
    end_time: datetime | None
    attempts: int
    metadata: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    source_run_id: str | None = None
    note: str | None = None


def describe_run(
    pipeline_name: str,
    run_id: str,
    state: Any,
    start: datetime | None,
    end: datetime | None,
    conf: Mapping[str, Any] | None,
    note: str | None,
) -> ExecutionDescription:
    """An :class:`ExecutionDescription` from a DAG run's fields (DB row or REST response)."""
    conf = dict(conf or {})
    block = conf.pop(CONF_KEY, None)
    return ExecutionDescription(
        pipeline_name=pipeline_name,
        execution_id=run_id,
        status=state_text(state) or "none",
        start_time=start,
        end_time=end,
        parameters=conf,
        selective_execution=dict(block) if isinstance(block, Mapping) else None,
        note=note,
    )


def describe_step(
    task_id: str,
    state: Any,
    start: datetime | None,
    end: datetime | None,
    try_number: int | None,
    note: str | None,
    record: Any,
) -> StepExecution:
    """A :class:`StepExecution` from a task instance's fields and its step record (XCom)."""
    record = record if isinstance(record, Mapping) else {}
    return StepExecution(
        step_name=task_id,
        status=state_text(state),
        start_time=start,
        end_time=end,
        attempts=int(try_number or 0),
        metadata=dict(record.get("metadata") or {}),
        outputs=dict(record.get("outputs") or {}),
        source_run_id=record.get("source_run_id"),
        note=note,
    )


class ExecutionsSession(Protocol):
    """Where executions run: a remote Airflow (REST API) or this process (local mode)."""

    def start(
        self,
        pipeline: Pipeline,
        *,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        note: str | None = None,
    ) -> str:
        """Start an execution of ``pipeline``; return its execution (run) id."""
        ...

    def list_executions(self, pipeline_name: str, *, limit: int = 20) -> list[ExecutionDescription]:
        """The pipeline's executions, newest first."""
        ...

    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        """One execution; :class:`~airflow_provider_mlpipe.exceptions.ExecutionNotFoundError` if none."""
        ...

    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        """The steps of one execution, in the pipeline's order."""
        ...

    def default_parameters(self, pipeline_name: str) -> dict[str, Any]:
        """The pipeline's parameters with their default values."""
        ...

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Stop a running execution (it ends as failed; finished steps keep their state)."""
        ...


class PipelineExecution:
    """One execution of a pipeline, as SageMaker's ``_PipelineExecution``.

    :param session: where the execution lives.
    :param pipeline_name: the pipeline (DAG id).
    :param execution_id: the Airflow run id.
    """

    def __init__(self, session: ExecutionsSession, pipeline_name: str, execution_id: str) -> None:
        self.session = session
        self.pipeline_name = pipeline_name
        self.execution_id = execution_id

    def describe(self) -> ExecutionDescription:
        """The execution's status, times, parameters and selective block."""
        return self.session.describe(self.pipeline_name, self.execution_id)

    def list_steps(self) -> list[StepExecution]:
        """Each step's status, times, attempts, metadata and, for a reused step, its source run."""
        return self.session.list_steps(self.pipeline_name, self.execution_id)

    def list_parameters(self) -> dict[str, Any]:
        """Every parameter's value in this execution (defaults for those not given)."""
        return {**self.session.default_parameters(self.pipeline_name), **self.describe().parameters}

    def wait(self, poll: float = 5.0, timeout: float | None = None) -> ExecutionDescription:
        """Wait until the execution finishes; return its final description.

        :param poll: seconds between checks.
        :param timeout: give up after this many seconds (:class:`ExecutionTimeoutError`); None waits on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            description = self.describe()
            if description.status in FINISHED:
                return description
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecutionTimeoutError(
                    f"execution {self.execution_id} of {self.pipeline_name!r} still {description.status} "
                    f"after {timeout} s"
                )
            time.sleep(poll)

    def stop(self) -> None:
        """Stop the execution: it ends as failed; steps that finished keep their outputs."""
        self.session.stop(self.pipeline_name, self.execution_id)

    def __repr__(self) -> str:
        return f"PipelineExecution({self.pipeline_name!r}, {self.execution_id!r})"
