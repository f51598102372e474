"""The executions API, shared by the Python client and the ``mlpipe`` command.

A :class:`PipelineExecution` is one Airflow DAG run of a pipeline. It talks to a *session*: an
:class:`~airflow_provider_mlpipe.client.rest.AirflowSession` (Airflow's REST API v2 through the
official ``apache-airflow-client``) or a :class:`~airflow_provider_mlpipe.client.local.LocalSession`
(in process, on the embedded metadata DB). Both return the same records.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
from airflow_provider_mlpipe.dagruns import failure_reason_of, state_text
from airflow_provider_mlpipe.exceptions import ExecutionTimeoutError, PipelinePausedError, StepOutputError
from airflow_provider_mlpipe.selective.model import CHECK_KEYS, CONF_KEY

if TYPE_CHECKING:
    from airflow_provider_mlpipe.client.outputs import StepOutputs
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig

FINISHED = frozenset({"success", "failed"})


@dataclass(frozen=True)
class ExecutionDescription:
    """One execution (DAG run) of a pipeline.

    :param parameters: the values given to this run (the reference run's for a selective run).
    :param selective_execution: the selective block (selected steps, source run, reused steps), if any.
    :param failure_reason: why a failed execution failed (SageMaker's ``FailureReason``): which steps
        failed and why, or why it ended without a failed step (a refused selection, a stop). Set by
        ``describe()``; listings leave it None (it takes each run's steps).
    :param no_cache: the run was started with the step cache ignored (every cached step ran).
    """

    pipeline_name: str
    execution_id: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)
    selective_execution: dict[str, Any] | None = None
    note: str | None = None
    failure_reason: str | None = None
    no_cache: bool = False


@dataclass(frozen=True)
class StepExecution:
    """One step (task instance) of an execution.

    :param attempts: Airflow's try number: 0 for a step that never started (reused or not run).
    :param metadata: what the step reported, e.g. a condition's ``outcome`` or a model version.
    :param outputs: the output references (URI, digest, type, size), never the data.
    :param source_run_id: for a reused step or a cache hit, the run its outputs come from.
    :param cache_hit: the step took its outputs from the step cache instead of running.
    :param fingerprint: the step's fingerprint in this run (code, parameters read, input contents).
    :param failure_reason: why the step's last try failed (SageMaker's ``FailureReason``): the script's
        last output lines, the exception, or the Fail step's message.
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
    failure_reason: str | None = None
    cache_hit: bool = False
    fingerprint: str | None = None


def describe_run(
    pipeline_name: str,
    run_id: str,
    state: Any,
    start: datetime | None,
    end: datetime | None,
    conf: Mapping[str, Any] | None,
    note: str | None,
    steps: Sequence[StepExecution] | None = None,
) -> ExecutionDescription:
    """An :class:`ExecutionDescription` from a DAG run's fields (DB row or REST response).

    :param steps: the run's steps, to say why it failed (only needed for a failed run); without
        them, ``failure_reason`` is None.
    """
    conf = dict(conf or {})
    block = conf.pop(CONF_KEY, None)
    no_cache = bool(conf.pop(NO_CACHE_CONF_KEY, False))
    return ExecutionDescription(
        pipeline_name=pipeline_name,
        execution_id=run_id,
        status=state_text(state) or "none",
        start_time=start,
        end_time=end,
        parameters=conf,
        selective_execution=user_facing_block(block) if isinstance(block, Mapping) else None,
        note=note,
        failure_reason=None if steps is None else execution_failure_reason(state_text(state), note, steps),
        no_cache=no_cache,
    )


def user_facing_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A run's selective block as ``describe()`` shows it: without the reused steps' fingerprints and
    the digests over them, which only the selected steps' own check reads."""
    return {key: value for key, value in block.items() if key not in CHECK_KEYS}


def execution_failure_reason(
    status: str | None, note: str | None, steps: Sequence[StepExecution]
) -> str | None:
    """Why an execution failed: each failed step and its reason; else the run's note, where mlpipe says
    why a run ended without a failed step (a refused selection, a stop, a process that ended)."""
    if status != "failed":
        return None
    failed = [step for step in steps if step.status == "failed"]
    explained = [step for step in failed if step.failure_reason]
    if explained:
        return "\n".join(f"step {step.step_name} failed: {step.failure_reason}" for step in explained)
    if note:
        return note
    if failed:
        names = ", ".join(step.step_name for step in failed)
        return (
            f"step(s) {names} failed with no reason recorded by the step: its task process ended before "
            "it could give one (a lost or killed worker, a task timeout, or an error before the step "
            "started); see the task log"
        )
    return "the execution was marked failed, and no step failed"


def describe_step(
    task_id: str,
    state: Any,
    start: datetime | None,
    end: datetime | None,
    try_number: int | None,
    note: str | None,
    record: Any,
    failure: Any = None,
) -> StepExecution:
    """A :class:`StepExecution` from a task instance's fields, its step record and its failure (XComs)."""
    record = record if isinstance(record, Mapping) else {}
    cache = record.get("cache")
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
        failure_reason=failure_reason_of(failure),
        cache_hit=bool(isinstance(cache, Mapping) and cache.get("hit")),
        fingerprint=record.get("fingerprint"),
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
        run_id: str | None = None,
        no_cache: bool = False,
    ) -> str:
        """Start an execution of ``pipeline``; return its execution (run) id (``run_id`` if given).

        With ``no_cache``, every step with caching on runs (and refreshes its cache entry)."""
        ...

    def list_executions(
        self,
        pipeline_name: str,
        *,
        limit: int = 20,
        status: str | Sequence[str] | None = None,
        since: datetime | str | None = None,
    ) -> list[ExecutionDescription]:
        """The pipeline's executions, newest first; only those in ``status`` and started since ``since``."""
        ...

    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        """One execution; :class:`~airflow_provider_mlpipe.exceptions.ExecutionNotFoundError` if none."""
        ...

    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        """The steps of one execution, in the pipeline's order."""
        ...

    def describe_step(self, pipeline_name: str, execution_id: str, step_name: str) -> StepExecution:
        """One step of one execution; :class:`~airflow_provider_mlpipe.exceptions.ExecutionNotFoundError`
        if there is no such execution or step."""
        ...

    def default_parameters(self, pipeline_name: str) -> dict[str, Any]:
        """The pipeline's parameters with their default values."""
        ...

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Stop a running execution (it ends as failed; finished steps keep their state)."""
        ...

    def is_paused(self, pipeline_name: str) -> bool:
        """Whether the pipeline is paused where the executions are (its queued runs wait)."""
        ...


def paused_message(pipeline_name: str, execution_id: str) -> str:
    """What to say of an execution that waits because its pipeline is paused, and what to do."""
    return (
        f"pipeline {pipeline_name!r} is paused: its run {execution_id} stays queued until it is unpaused; "
        f"unpause it with `airflow dags unpause {pipeline_name}` (or the toggle in the Airflow UI), and "
        "set [core] dags_are_paused_at_creation = False so that new pipelines start unpaused"
    )


class PipelineExecution:
    """One execution of a pipeline, as SageMaker's ``_PipelineExecution``.

    :param session: where the execution lives.
    :param pipeline_name: the pipeline (DAG id).
    :param execution_id: the Airflow run id.
    :param artifact_store: the pipeline's own artifact store URL, if it has one (default: the
        provider's ``[mlpipe] artifact_store`` as configured here); outputs are read from it.
    """

    def __init__(
        self,
        session: ExecutionsSession,
        pipeline_name: str,
        execution_id: str,
        *,
        artifact_store: str | None = None,
    ) -> None:
        self.session = session
        self.pipeline_name = pipeline_name
        self.execution_id = execution_id
        self.artifact_store = artifact_store

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
        :raises PipelinePausedError: the execution is queued and its pipeline is paused: it would
            never start while the pipeline stays paused.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            description = self.describe()
            if description.status in FINISHED:
                return description
            if description.status == "queued" and self.session.is_paused(self.pipeline_name):
                raise PipelinePausedError(paused_message(self.pipeline_name, self.execution_id))
            if deadline is not None and time.monotonic() >= deadline:
                raise ExecutionTimeoutError(
                    f"execution {self.execution_id} of {self.pipeline_name!r} still {description.status} "
                    f"after {timeout} s"
                )
            time.sleep(poll)

    def stop(self) -> None:
        """Stop the execution: it ends as failed; steps that finished keep their outputs.

        A finished execution is left as it is.
        """
        self.session.stop(self.pipeline_name, self.execution_id)

    def step_outputs(
        self, step_name: str, *, allow_pickle: bool = False, download_dir: str | Path | None = None
    ) -> StepOutputs:
        """The outputs of a step that succeeded, by name, each read from the artifact store when first used.

        Values come back as the type they were (JSON values, numpy arrays, DataFrames); a file or
        folder comes back as the :class:`~pathlib.Path` of a local copy.

        :param step_name: the step.
        :param allow_pickle: load outputs stored as pickles (unpickling runs code from the artifact).
        :param download_dir: where copies of files and folders go (default: a new temporary folder each).
        :raises StepOutputError: the step did not succeed in this execution (it failed, was skipped,
            has not run yet).
        """
        from airflow_provider_mlpipe.client.outputs import StepOutputs

        step = self.session.describe_step(self.pipeline_name, self.execution_id, step_name)
        if step.status != "success":
            why = f". It failed: {step.failure_reason}" if step.failure_reason else ""
            raise StepOutputError(
                f"step {step_name!r} of execution {self.execution_id} is {step.status or 'not started'}, "
                f"and only a step that succeeded has outputs{why}"
            )
        return StepOutputs(
            step_name,
            step.outputs,
            store_url=self.artifact_store,
            allow_pickle=allow_pickle,
            download_dir=Path(download_dir) if download_dir is not None else None,
        )

    def result(
        self, step_name: str, *, allow_pickle: bool = False, poll: float = 5.0, timeout: float | None = None
    ) -> Any:
        """Wait for the execution to finish, then return a step's output (SageMaker's ``result``).

        :param step_name: the step.
        :param allow_pickle: see :meth:`step_outputs`.
        :param poll: seconds between checks while waiting.
        :param timeout: give up waiting after this many seconds.
        :returns: the value of a step with one output; the outputs by name (:meth:`step_outputs`) else.
        """
        self.wait(poll=poll, timeout=timeout)
        outputs = self.step_outputs(step_name, allow_pickle=allow_pickle)
        if len(outputs) == 1:
            return outputs[next(iter(outputs))]
        return outputs

    def __repr__(self) -> str:
        return f"PipelineExecution({self.pipeline_name!r}, {self.execution_id!r})"
