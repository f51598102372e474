"""The plugin's FastAPI app, mounted in the api-server under ``/mlpipe``.

- ``GET  /mlpipe/api/v1/pipelines/{dag_id}/steps[?run_id=]``: the steps, parameters and a reference run.
- ``POST /mlpipe/api/v1/pipelines/{dag_id}/selectiveRuns``: plan (``dry_run``) or create a selective run;
  the run and its reused steps are written in one transaction, so the scheduler never races them.
- ``GET  /mlpipe/selective?dag_id=&run_id=``: the page the Airflow UI shows on a DAG run ("Selective
  run" tab) where the user ticks the steps to run again.

Authentication and authorization are Airflow's own: the same JWT (bearer header or the UI's cookie)
and the same DAG-level permissions as the REST API's DAG run endpoints.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from airflow_provider_mlpipe.exceptions import MlpipeError
from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig, SelectivePlan

app = FastAPI(
    title="airflow-provider-mlpipe",
    description="Selective execution of mlpipe pipelines: re-run chosen steps, reuse the rest.",
)


class SelectiveRunRequest(BaseModel):
    """A selective run to create (or, with ``dry_run``, to plan only)."""

    selected_steps: list[str] = Field(description="The steps to run.")
    source_run_id: str | None = Field(None, description="The reference run; default the latest finished run.")
    include_between: bool = Field(False, description="Also select the steps between selected steps.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the reference's values."
    )
    dry_run: bool = Field(False, description="Only plan: say what would run and what would be reused.")
    note: str | None = Field(None, description="A note for the new run (default: what was selected).")


def plan_response(plan: SelectivePlan) -> dict[str, Any]:
    return {
        "dag_id": plan.pipeline,
        "source_run_id": plan.source_run_id,
        "selected_steps": plan.selected,
        "reused_steps": sorted(plan.reused),
        "reused_skipped_steps": sorted(plan.reused_skipped),
        "not_run": plan.not_run,
        "parameters": plan.parameters,
        "conf": plan.conf(),
    }


@app.post(
    "/api/v1/pipelines/{dag_id}/selectiveRuns",
    dependencies=[Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))],
)
def create_selective_run(dag_id: str, body: SelectiveRunRequest, user: GetUserDep) -> dict[str, Any]:
    """Create a selective run of ``dag_id``; 400 with the reason if the selection is refused."""
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.selective.runs import create_selective_run as create

    config = SelectiveExecutionConfig(body.selected_steps, body.source_run_id, body.include_between)
    try:
        with create_session() as session:  # commits the run and its reused steps together, or nothing
            run, plan = create(
                dag_id,
                config,
                body.parameters,
                session=session,
                triggering_user_name=user.get_name(),
                dry_run=body.dry_run,
            )
            if run is not None and body.note:
                run.note = body.note
            response = plan_response(plan)
            if run is not None:
                response.update(run_id=run.run_id, state=str(run.state), note=run.note)
    except MlpipeError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return response


@app.get(
    "/api/v1/pipelines/{dag_id}/steps",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
)
def pipeline_steps(dag_id: str, run_id: str | None = None) -> dict[str, Any]:
    """The steps and parameters of ``dag_id``, with the states and parameters of a reference run."""
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.selective.runs import reference_candidates, step_infos_from_dag

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        if dag is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no pipeline (DAG) named {dag_id!r}")
        try:
            steps = step_infos_from_dag(dag)
        except MlpipeError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
        references = [
            run for run in reference_candidates(dag_id, run_id, session=session) if run.pipeline == dag_id
        ]
    reference = references[0] if references else None
    return {
        "dag_id": dag_id,
        "steps": [
            {
                "name": info.name,
                "kind": info.kind,
                "upstream": sorted(info.upstream),
                "if_steps": list(info.if_steps),
                "else_steps": list(info.else_steps),
                "reference_state": reference.steps[info.name].state
                if reference and info.name in reference.steps
                else None,
            }
            for info in steps.values()
        ],
        "parameters": {name: param.dump() for name, param in dag.params.items()},  # (name, Param) pairs
        "reference": None
        if reference is None
        else {"run_id": reference.run_id, "state": reference.state, "conf": dict(reference.conf)},
    }


@app.get("/selective", response_class=HTMLResponse)
def selective_page() -> HTMLResponse:
    """The selective-run page. Static: it reads ``dag_id`` and ``run_id`` from its own URL and
    fetches everything else from the endpoints above, with the user's own credentials."""
    page = resources.files("airflow_provider_mlpipe.plugins").joinpath("selective.html").read_text()
    return HTMLResponse(page)
