"""Executions over Airflow's REST API v2, through the official ``apache-airflow-client`` package.

Full runs, run and task-instance listings, XCom reads and stopping use the client's generated API
classes. Selective runs go to the provider's plugin endpoint in the same api-server (through the same
client, so authentication and TLS settings are shared): it creates the run and records the reused
steps in one transaction, which the public API cannot do without racing the scheduler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.client.executions import (
    ExecutionDescription,
    StepExecution,
    describe_run,
    describe_step,
)
from airflow_provider_mlpipe.dagruns import (
    FAILURE_KEY,
    RETURN_VALUE,
    fit_note,
    pipeline_order,
)
from airflow_provider_mlpipe.exceptions import (
    AirflowApiError,
    ExecutionNotFoundError,
    PipelineNotFoundError,
    SelectiveExecutionError,
)
from airflow_provider_mlpipe.selective.manifest import is_step_task_id
from airflow_provider_mlpipe.settings import default_api_url

if TYPE_CHECKING:
    from airflow_client.client import ApiClient

    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig

SELECTIVE_RUNS_PATH = "/mlpipe/api/v1/pipelines/{dag_id}/selectiveRuns"


class AirflowSession:
    """Executions on a running Airflow, through its REST API v2.

    Credentials: a JWT ``token``; or ``username`` and ``password`` exchanged for one at
    ``/auth/token``; or, with neither, the token that an api-server with
    ``simple_auth_manager_all_admins`` gives without credentials. Defaults come from the environment:
    ``AIRFLOW__MLPIPE__API_URL``, ``MLPIPE_API_TOKEN``, ``MLPIPE_API_USERNAME``, ``MLPIPE_API_PASSWORD``.

    :param api_url: the api-server's base URL, e.g. ``http://127.0.0.1:8080``.
    :param token: a JWT for the REST API.
    :param username: a user to log in as (with ``password``).
    :param password: that user's password.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        url = api_url or default_api_url()
        if not url:
            raise AirflowApiError(
                "no Airflow API URL: pass api_url, or set [mlpipe] api_url (AIRFLOW__MLPIPE__API_URL)"
            )
        self.api_url = url.rstrip("/")
        self._token = token or os.environ.get("MLPIPE_API_TOKEN")
        self._username = username or os.environ.get("MLPIPE_API_USERNAME")
        self._password = password or os.environ.get("MLPIPE_API_PASSWORD")
        self._client: ApiClient | None = None

    # -- plumbing -------------------------------------------------------------------------
    @property
    def client(self) -> ApiClient:
        """The ``apache-airflow-client`` API client, logged in on first use."""
        if self._client is None:
            from airflow_client.client import ApiClient, Configuration

            anonymous = ApiClient(Configuration(host=self.api_url))
            token = self._token or self._fetch_token(anonymous)
            self._client = ApiClient(Configuration(host=self.api_url, access_token=token))
        return self._client

    def _fetch_token(self, client: ApiClient) -> str:
        if self._username and self._password:
            body = {"username": self._username, "password": self._password}
            data = self._request(client, "POST", "/auth/token", body, what="log in")
        else:
            data = self._request(client, "GET", "/auth/token", None, what="get a token without credentials")
        return str(data["access_token"])

    def _request(self, client: ApiClient, method: str, path: str, body: Any, *, what: str) -> Any:
        """A JSON request to a path outside the generated API (login, the plugin endpoint)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if client.configuration.access_token:
            headers["Authorization"] = f"Bearer {client.configuration.access_token}"
        try:
            response = client.call_api(method, self.api_url + path, header_params=headers, body=body)
            response.read()
        except Exception as error:  # urllib3 raises several kinds; all mean "not reachable"
            raise AirflowApiError(f"cannot {what} at {self.api_url}: {error}") from None
        text = response.data.decode() if response.data else ""
        if response.status >= 400:
            raise AirflowApiError(f"cannot {what}: HTTP {response.status}: {_detail(text)}")
        return json.loads(text) if text else None

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call a generated API method; turn its exceptions into named, readable errors."""
        from airflow_client.client import ApiException

        try:
            return function(*args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                raise ExecutionNotFoundError(f"{what}: not found ({_detail(error.body)})") from None
            raise AirflowApiError(f"{what}: HTTP {error.status}: {_detail(error.body)}") from None
        except OSError as error:
            raise AirflowApiError(f"{what}: cannot reach {self.api_url}: {error}") from None

    # -- the executions API -----------------------------------------------------------------
    def start(
        self,
        pipeline: Pipeline | str,
        *,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        note: str | None = None,
    ) -> str:
        name = pipeline if isinstance(pipeline, str) else pipeline.name
        if not isinstance(pipeline, str) and selective_execution_config is None:
            pipeline.resolve_parameters(parameters or {})  # refuse bad values before creating anything
        if selective_execution_config is not None:
            return self._start_selective(name, selective_execution_config, parameters or {}, note)
        from airflow_client.client import DagRunApi, TriggerDAGRunPostBody

        body = TriggerDAGRunPostBody(conf=dict(parameters or {}), note=note, logical_date=None)
        run = self._call(f"start pipeline {name!r}", DagRunApi(self.client).trigger_dag_run, name, body)
        return str(run.dag_run_id)

    def _start_selective(
        self, name: str, config: SelectiveExecutionConfig, parameters: Mapping[str, Any], note: str | None
    ) -> str:
        body = {**config.to_conf(), "parameters": dict(parameters), "note": note}
        try:
            data = self._request(
                self.client, "POST", SELECTIVE_RUNS_PATH.format(dag_id=name), body, what="start"
            )
        except AirflowApiError as error:
            if "HTTP 400" in str(error):
                raise SelectiveExecutionError(str(error).split("HTTP 400: ", 1)[-1]) from None
            raise
        return str(data["run_id"])

    def list_executions(self, pipeline_name: str, *, limit: int = 20) -> list[ExecutionDescription]:
        from airflow_client.client import DagRunApi

        try:
            runs = self._call(
                f"list executions of {pipeline_name!r}",
                DagRunApi(self.client).get_dag_runs,
                pipeline_name,
                limit=limit,
                order_by=["-run_after"],
            )
        except ExecutionNotFoundError:
            raise PipelineNotFoundError(
                f"Airflow at {self.api_url} has no pipeline named {pipeline_name!r}"
            ) from None
        return [self._description(pipeline_name, run, with_reason=False) for run in runs.dag_runs]

    def describe(self, pipeline_name: str, execution_id: str) -> ExecutionDescription:
        from airflow_client.client import DagRunApi

        run = self._call(
            f"execution {execution_id} of {pipeline_name!r}",
            DagRunApi(self.client).get_dag_run,
            pipeline_name,
            execution_id,
        )
        return self._description(pipeline_name, run)

    def _description(self, pipeline_name: str, run: Any, *, with_reason: bool = True) -> ExecutionDescription:
        # Why a run failed is said by its steps: only a failed run needs them (a request per step).
        failed = with_reason and str(getattr(run.state, "value", run.state)) == "failed"
        steps = self.list_steps(pipeline_name, run.dag_run_id) if failed else None
        return describe_run(
            pipeline_name, run.dag_run_id, run.state, run.start_date, run.end_date, run.conf, run.note, steps
        )

    def list_steps(self, pipeline_name: str, execution_id: str) -> list[StepExecution]:
        from airflow_client.client import TaskInstanceApi

        what = f"steps of execution {execution_id} of {pipeline_name!r}"
        instances = self._call(
            what, TaskInstanceApi(self.client).get_task_instances, pipeline_name, execution_id, limit=1000
        ).task_instances
        ordered = sorted((ti for ti in instances if is_step_task_id(ti.task_id)), key=pipeline_order)
        return [self._step(pipeline_name, execution_id, ti) for ti in ordered]

    def describe_step(self, pipeline_name: str, execution_id: str, step_name: str) -> StepExecution:
        from airflow_client.client import TaskInstanceApi

        ti = self._call(
            f"step {step_name!r} of execution {execution_id} of {pipeline_name!r}",
            TaskInstanceApi(self.client).get_task_instance,
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
                f"XCom {key!r} of step {step!r}",
                XComApi(self.client).get_xcom_entry,
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

        details = self._call(
            f"pipeline {pipeline_name!r}", DAGApi(self.client).get_dag_details, pipeline_name
        )
        return {name: (spec or {}).get("value") for name, spec in (details.params or {}).items()}

    def stop(self, pipeline_name: str, execution_id: str) -> None:
        """Mark a running execution failed (Airflow fails its running steps, skips the others);
        a finished one is left as it is."""
        from airflow_client.client import DagRunApi, DagRunMutableStates, DAGRunPatchBody

        what = f"stop execution {execution_id} of {pipeline_name!r}"
        run = self._call(what, DagRunApi(self.client).get_dag_run, pipeline_name, execution_id)
        if str(getattr(run.state, "value", run.state)) in ("success", "failed"):
            return  # patching would turn a successful run into a failed one
        self._call(
            what,
            DagRunApi(self.client).patch_dag_run,
            pipeline_name,
            execution_id,
            DAGRunPatchBody(
                state=DagRunMutableStates.FAILED,
                note=fit_note(f"{run.note or ''} Stopped on request.".strip()),
            ),
            update_mask=["state", "note"],
        )


def _detail(body: Any) -> str:
    """The ``detail`` of an API error body, or the body itself."""
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        return text[:500]
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]
