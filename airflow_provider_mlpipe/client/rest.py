"""Executions over Airflow's REST API v2, through the official ``apache-airflow-client`` package.

Full runs, run and task-instance listings, XCom reads and stopping use the client's generated API
classes. Selective runs go to the provider's plugin endpoint in the same api-server (through the same
client, so authentication and TLS settings are shared): it creates the run and records the reused
steps in one transaction, which the public API cannot do without racing the scheduler.

Every start carries a run id chosen here, so a start whose answer was lost (a 5xx answer, a dropped
connection) can be sent again: the api-server refuses a second run with that id, and the run the
first attempt created is found and compared with the request instead. Reads are retried the same way;
see :mod:`airflow_provider_mlpipe.client.retry` for the bounds.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
from airflow_provider_mlpipe.client.executions import (
    ExecutionDescription,
    StepExecution,
    describe_run,
    describe_step,
)
from airflow_provider_mlpipe.client.http import ApiConnection
from airflow_provider_mlpipe.client.retry import ApiRetryPolicy, call_with_retries
from airflow_provider_mlpipe.dagruns import (
    FAILURE_KEY,
    RETURN_VALUE,
    fit_note,
    pipeline_order,
)
from airflow_provider_mlpipe.exceptions import (
    AirflowApiError,
    ApiConflictError,
    ExecutionNotFoundError,
    PipelineNotFoundError,
    SelectiveExecutionError,
)
from airflow_provider_mlpipe.selective.manifest import is_step_task_id
from airflow_provider_mlpipe.settings import default_api_url

if TYPE_CHECKING:
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig

SELECTIVE_RUNS_PATH = "/mlpipe/api/v1/pipelines/{dag_id}/selectiveRuns"


def new_run_id() -> str:
    """A run id for a new execution, chosen by the client so that its start can be sent again.

    Shaped like Airflow's own manual run ids (``manual__<UTC time>``), with a random suffix so that
    processes starting runs in the same microsecond never pick the same one.
    """
    return f"manual__{datetime.now(timezone.utc).isoformat()}_{secrets.token_hex(4)}"


class AirflowSession:
    """Executions on a running Airflow, through its REST API v2.

    Credentials: a JWT ``token``; or ``username`` and ``password`` exchanged for one at
    ``/auth/token`` (and again when it is about to expire); or, with neither, the token that an
    api-server with ``simple_auth_manager_all_admins`` gives without credentials. Defaults come from
    the environment: ``AIRFLOW__MLPIPE__API_URL``, ``MLPIPE_API_TOKEN``, ``MLPIPE_API_USERNAME``,
    ``MLPIPE_API_PASSWORD``.

    :param api_url: the api-server's base URL, e.g. ``http://127.0.0.1:8080``.
    :param token: a JWT for the REST API (it cannot be renewed when it expires).
    :param username: a user to log in as (with ``password``).
    :param password: that user's password.
    :param retry_policy: how transient failures (5xx, lost connections) are retried.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retry_policy: ApiRetryPolicy | None = None,
    ) -> None:
        url = api_url or default_api_url()
        if not url:
            raise AirflowApiError(
                "no Airflow API URL: pass api_url, or set [mlpipe] api_url (AIRFLOW__MLPIPE__API_URL)"
            )
        self.api_url = url.rstrip("/")
        self.retry_policy = retry_policy or ApiRetryPolicy()
        self.connection = ApiConnection(
            self.api_url,
            token=token or os.environ.get("MLPIPE_API_TOKEN"),
            username=username or os.environ.get("MLPIPE_API_USERNAME"),
            password=password or os.environ.get("MLPIPE_API_PASSWORD"),
        )

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, what: str, api: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``api(client).method(*args, **kwargs)`` (a generated API class), retrying transient
        failures. Only for calls that are safe to repeat."""
        return call_with_retries(
            what,
            lambda _attempt: self.connection.call(
                what, lambda client: getattr(api(client), method), *args, **kwargs
            ),
            self.retry_policy,
        )

    # -- the executions API -----------------------------------------------------------------
    def start(
        self,
        pipeline: Pipeline | str,
        *,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        note: str | None = None,
        run_id: str | None = None,
        no_cache: bool = False,
    ) -> str:
        """Start an execution; return its run id.

        :param run_id: the run id to give it (default: a new unique one). Starting again with the same
            id and the same request gives the same execution, never a second one.
        """
        name = pipeline if isinstance(pipeline, str) else pipeline.name
        if not isinstance(pipeline, str) and selective_execution_config is None:
            pipeline.resolve_parameters(parameters or {})  # refuse bad values before creating anything
        run_id = run_id or new_run_id()
        if selective_execution_config is not None:
            return self._start_selective(
                name, selective_execution_config, parameters or {}, note, run_id, no_cache=no_cache
            )
        conf = dict(parameters or {})
        if no_cache:
            conf[NO_CACHE_CONF_KEY] = True
        what = f"start pipeline {name!r} as run {run_id}"

        def attempt(_number: int) -> str:
            from airflow_client.client import DagRunApi, TriggerDAGRunPostBody

            body = TriggerDAGRunPostBody(dag_run_id=run_id, conf=conf, note=note, logical_date=None)
            try:
                run = self.connection.call(what, lambda client: DagRunApi(client).trigger_dag_run, name, body)
            except ApiConflictError:
                # The id is taken: by an earlier attempt whose answer was lost, or by another request.
                return self._existing_run(name, run_id, conf, note, what)
            except ExecutionNotFoundError:
                raise PipelineNotFoundError(
                    f"Airflow at {self.api_url} has no pipeline named {name!r}"
                ) from None
            return str(run.dag_run_id)

        return call_with_retries(what, attempt, self.retry_policy, giving_up=_maybe_created(name, run_id))

    def _existing_run(
        self, name: str, run_id: str, conf: Mapping[str, Any], note: str | None, what: str
    ) -> str:
        """``run_id`` if the existing run of that id is the one this request asked for, else an error."""
        from airflow_client.client import DagRunApi

        run = self.connection.call(what, lambda client: DagRunApi(client).get_dag_run, name, run_id)
        existing = dict(run.conf or {})
        # Airflow keeps a plain start's conf as it was given: the same request has the same conf.
        if existing == dict(conf) and (note is None or run.note == note):
            return run_id
        raise ApiConflictError(
            f"cannot {what}: pipeline {name!r} already has a run {run_id} started with other parameters "
            f"({existing}); choose another run id"
        )

    def _start_selective(
        self,
        name: str,
        config: SelectiveExecutionConfig,
        parameters: Mapping[str, Any],
        note: str | None,
        run_id: str,
        *,
        no_cache: bool = False,
    ) -> str:
        # The endpoint treats a second request with the same run id and the same selection as the
        # first one, and answers with the run it created: safe to send again.
        body = {
            **config.to_conf(),
            "parameters": dict(parameters),
            "note": note,
            "run_id": run_id,
            "no_cache": no_cache,
        }
        what = f"start a selective run {run_id} of pipeline {name!r}"

        def attempt(_number: int) -> str:
            try:
                data = self.connection.request(
                    "POST", SELECTIVE_RUNS_PATH.format(dag_id=name), body, what=what
                )
            except ExecutionNotFoundError:
                raise PipelineNotFoundError(
                    f"Airflow at {self.api_url} has no pipeline named {name!r} (or the mlpipe plugin "
                    "is not installed in its api-server)"
                ) from None
            except AirflowApiError as error:
                if "HTTP 400" in str(error):
                    raise SelectiveExecutionError(str(error).split("HTTP 400: ", 1)[-1]) from None
                raise
            return str(data["run_id"])

        return call_with_retries(what, attempt, self.retry_policy, giving_up=_maybe_created(name, run_id))

    def list_executions(
        self,
        pipeline_name: str,
        *,
        limit: int = 20,
        status: str | Sequence[str] | None = None,
        since: datetime | str | None = None,
    ) -> list[ExecutionDescription]:
        from airflow_client.client import DagRunApi

        from airflow_provider_mlpipe.client.filters import checked_limit, checked_since, checked_statuses

        filters: dict[str, Any] = {}
        statuses, start = checked_statuses(status), checked_since(since)
        if statuses is not None:
            filters["state"] = statuses
        if start is not None:
            filters["run_after_gte"] = start
        try:
            runs = self._call(
                f"list executions of {pipeline_name!r}",
                DagRunApi,
                "get_dag_runs",
                pipeline_name,
                limit=checked_limit(limit),
                order_by=["-run_after"],
                **filters,
            )
        except ExecutionNotFoundError:
            raise PipelineNotFoundError(
                f"Airflow at {self.api_url} has no pipeline named {pipeline_name!r}"
            ) from None
        return [self._description(pipeline_name, run, with_reason=False) for run in runs.dag_runs]

    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        from airflow_client.client import DagRunApi

        run = self._call(
            f"read execution {execution_id} of {pipeline_name!r}",
            DagRunApi,
            "get_dag_run",
            pipeline_name,
            execution_id,
        )
        return self._description(pipeline_name, run)

    def is_paused(self, pipeline_name: str) -> bool:
        """Whether the pipeline's DAG is paused (its queued runs do not start)."""
        from airflow_client.client import DAGApi

        dag = self._call(f"read pipeline {pipeline_name!r}", DAGApi, "get_dag", pipeline_name)
        return bool(dag.is_paused)

    def _description(self, pipeline_name: str, run: Any, *, with_reason: bool = True) -> ExecutionDescription:
        # Why a run failed is said by its steps: only a failed run needs them (a request per step).
        failed = with_reason and str(getattr(run.state, "value", run.state)) == "failed"
        steps = self.list_steps(pipeline_name, run.dag_run_id) if failed else None
        return describe_run(
            pipeline_name, run.dag_run_id, run.state, run.start_date, run.end_date, run.conf, run.note, steps
        )

    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        from airflow_client.client import TaskInstanceApi

        what = f"read the steps of execution {execution_id} of {pipeline_name!r}"
        instances = self._call(
            what, TaskInstanceApi, "get_task_instances", pipeline_name, execution_id, limit=1000
        ).task_instances
        ordered = sorted((ti for ti in instances if is_step_task_id(ti.task_id)), key=pipeline_order)
        return [self._step(pipeline_name, execution_id, ti) for ti in ordered]

    def describe_step(self, pipeline_name: str, execution_id: str, step_name: str) -> StepExecution:
        from airflow_client.client import TaskInstanceApi

        ti = self._call(
            f"read step {step_name!r} of execution {execution_id} of {pipeline_name!r}",
            TaskInstanceApi,
            "get_task_instance",
            pipeline_name,
            execution_id,
            step_name,
        )
        return self._step(pipeline_name, execution_id, ti)

    def _step(self, pipeline_name: str, execution_id: str, ti: Any) -> StepExecution:
        state = str(getattr(ti.state, "value", ti.state))
        # Only a try that failed leaves a failure record (Airflow clears XComs when a try starts).
        failure = (
            self._xcom(pipeline_name, execution_id, ti.task_id, FAILURE_KEY)
            if state in ("failed", "up_for_retry")
            else None
        )
        return describe_step(
            ti.task_id,
            ti.state,
            ti.start_date,
            ti.end_date,
            ti.try_number,
            ti.note,
            self._xcom(pipeline_name, execution_id, ti.task_id, RETURN_VALUE),
            failure,
        )

    def _xcom(self, pipeline_name: str, execution_id: str, step: str, key: str) -> Any:
        """The XCom ``key`` of a step (its record, or its failure); None if it has none."""
        from airflow_client.client import XComApi

        try:
            entry = self._call(
                f"read XCom {key!r} of step {step!r}",
                XComApi,
                "get_xcom_entry",
                pipeline_name,
                step,
                execution_id,
                key,
            )
        except ExecutionNotFoundError:  # no such XCom: the step did not run (or not yet), or did not fail
            return None
        value = getattr(entry.actual_instance, "value", None)
        return json.loads(value) if isinstance(value, str) and value.startswith("{") else value

    def default_parameters(self, pipeline_name: str) -> dict[str, Any]:
        from airflow_client.client import DAGApi

        details = self._call(f"read pipeline {pipeline_name!r}", DAGApi, "get_dag_details", pipeline_name)
        return {name: (spec or {}).get("value") for name, spec in (details.params or {}).items()}

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Mark a running execution failed (Airflow fails its running steps, skips the others);
        a finished one is left as it is."""
        from airflow_client.client import DagRunApi, DagRunMutableStates, DAGRunPatchBody

        what = f"stop execution {execution_id} of {pipeline_name!r}"
        run = self._call(what, DagRunApi, "get_dag_run", pipeline_name, execution_id)
        if str(getattr(run.state, "value", run.state)) in ("success", "failed"):
            return  # patching would turn a successful run into a failed one
        # Setting the same state and note twice is the same as once: safe to repeat.
        self._call(
            what,
            DagRunApi,
            "patch_dag_run",
            pipeline_name,
            execution_id,
            DAGRunPatchBody(
                state=DagRunMutableStates.FAILED,
                note=fit_note(f"{run.note or ''} Stopped on request.".strip()),
            ),
            update_mask=["state", "note"],
        )


def _maybe_created(name: str, run_id: str) -> Any:
    """The end of the message of a start that kept failing: the run may exist all the same."""

    def tail(_failures: list[str]) -> str:
        return (
            f"Run {run_id} may have been created all the same (an answer can be lost after the run was "
            f"made): `mlpipe executions describe {name} {run_id}` tells; starting again with "
            f"run_id={run_id!r} never makes a second one"
        )

    return tail
