"""The plugin's FastAPI app, mounted in the api-server under ``/mlpipe``.

- ``GET  /mlpipe/api/v1/pipelines/{dag_id}/steps[?run_id=]``: the steps, parameters and a reference run.
- ``POST /mlpipe/api/v1/pipelines/{dag_id}/selectiveRuns``: plan (``dry_run``) or create a selective run;
  the run, its reused steps and its audit-log entry are written in one transaction, so the scheduler
  never races them.
- ``GET  /mlpipe/api/v1/pipelines/{dag_id}/runs/{run_id}/graph``: what the "Selective run" view shows
  of a run: steps, dependencies, each step's fate in that run, parameters with their JSON schema.
- ``GET  /mlpipe/api/v1/pipelines/{dag_id}/runs/{run_id}/lineage``: what each step of a run read and
  wrote (digests), its code, parameters and fingerprint, and where reused or cached outputs came from.
- ``GET  /mlpipe/api/v1/pipelines/{dag_id}/models/{group}/{version}/lineage[?direction=]``: the lineage
  graph of a model version the pipeline registered, from the lineage index in ``[mlpipe]
  artifact_store``.
- ``GET  /mlpipe/ui/{file}``: the view's built bundle (a React app the Airflow UI loads on a DAG run's
  "Selective run" tab; see :mod:`airflow_provider_mlpipe.plugins`).

Authentication and authorization are Airflow's own: the same JWT (bearer header or the UI's cookie)
and the same DAG-level permissions as the REST API's DAG run endpoints. The bundle is static code
and, like the Airflow UI's own assets, needs no login.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from airflow_provider_mlpipe.exceptions import MlpipeError
from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig, SelectivePlan

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
    no_cache: bool = Field(False, description="The selected steps ignore the step cache (and refresh it).")
    run_id: str | None = Field(
        None,
        description="The new run's id, chosen by the client. The same request sent again with the same "
        "id (its answer was lost) gets the run the first one made, never a second run.",
    )


def plan_response(plan: SelectivePlan, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the endpoint answers about ``plan``; ``conf``: the run's conf, where a run was created
    with it (else the plan's is computed)."""
    return {
        "dag_id": plan.pipeline,
        "source_run_id": plan.source_run_id,
        "selected_steps": plan.selected,
        "reused_steps": sorted(plan.reused),
        "reused_skipped_steps": sorted(plan.reused_skipped),
        "not_run": plan.not_run,
        "parameters": plan.parameters,
        "conf": plan.conf() if conf is None else conf,
    }


@app.post(
    "/api/v1/pipelines/{dag_id}/selectiveRuns",
    dependencies=[Depends(requires_access_dag(method="POST", access_entity=DagAccessEntity.RUN))],
)
def create_selective_run(dag_id: str, body: SelectiveRunRequest, user: GetUserDep) -> dict[str, Any]:
    """Create a selective run of ``dag_id``; 400 with the reason if the selection is refused.

    With a ``run_id`` that a run of ``dag_id`` already has: that run (200) if it is what this request
    makes (the same request sent again), else 409.
    """
    from sqlalchemy.exc import IntegrityError

    config = SelectiveExecutionConfig(body.selected_steps, body.source_run_id, body.include_between)
    if body.run_id is not None and not body.dry_run:
        existing = _existing_run_response(dag_id, config, body)
        if existing is not None:
            return existing
    try:
        return _create(dag_id, config, body, user)
    except IntegrityError:
        # Two copies of one request raced: the other one created the run (unique run id).
        existing = _existing_run_response(dag_id, config, body) if body.run_id is not None else None
        if existing is None:
            raise
        return existing


def _create(
    dag_id: str, config: SelectiveExecutionConfig, body: SelectiveRunRequest, user: Any
) -> dict[str, Any]:
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.plugins.audit import record_selective_run
    from airflow_provider_mlpipe.selective.runs import create_selective_run as create

    try:
        with create_session() as session:  # commits the run and its reused steps together, or nothing
            run, plan = create(
                dag_id,
                config,
                body.parameters,
                session=session,
                triggering_user_name=user.get_name(),
                dry_run=body.dry_run,
                run_id=body.run_id,
                no_cache=body.no_cache,
            )
            if run is not None and body.note:
                run.note = body.note
            response = plan_response(plan, None if run is None else run.conf)
            if run is not None:
                record_selective_run(run, plan, body.parameters, user_name=user.get_name(), session=session)
                response.update(run_id=run.run_id, state=str(run.state), note=run.note)
    except MlpipeError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    except ValueError as error:  # Airflow refuses a run id that does not match its allowed pattern
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return response


def _existing_run_response(
    dag_id: str, config: SelectiveExecutionConfig, body: SelectiveRunRequest
) -> dict[str, Any] | None:
    """The answer for a run id in use: the run, if this request made it; None if there is no such run.

    :raises HTTPException: 409 if the run with that id was made by another request.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mlpipe.selective.model import CONF_KEY
    from airflow_provider_mlpipe.selective.runs import is_same_selective_request

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == body.run_id))
        if run is None:
            return None
        if not is_same_selective_request(run, config, body.parameters, body.note):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"pipeline {dag_id!r} already has a run {body.run_id!r} made by another request; "
                "choose another run id",
            )
        conf = dict(run.conf or {})
        block = dict(conf.pop(CONF_KEY))
        return {
            "dag_id": dag_id,
            "run_id": run.run_id,
            "state": str(run.state),
            "note": run.note,
            "source_run_id": block.get("source_run_id"),
            "selected_steps": block.get("selected_steps"),
            "reused_steps": block.get("reused_steps"),
            "reused_skipped_steps": sorted(block.get("reused_skipped_steps") or {}),
            "not_run": block.get("not_run"),
            "parameters": conf,
            "conf": dict(run.conf or {}),
            "existing": True,
        }


@app.get(
    "/api/v1/pipelines/{dag_id}/steps",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
)
def pipeline_steps(dag_id: str, run_id: str | None = None) -> dict[str, Any]:
    """The steps and parameters of ``dag_id``, with the states and parameters of a reference run."""
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.selective.runs import reference_candidates, step_infos_from_dag
    from airflow_provider_mlpipe.serialized_dags import latest_serialized_dag

    with create_session() as session:
        dag = latest_serialized_dag(dag_id, session=session)
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


@app.get(
    "/api/v1/pipelines/{dag_id}/runs/{run_id}/graph",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
)
def run_graph(dag_id: str, run_id: str) -> dict[str, Any]:
    """The steps of ``dag_id`` and what became of each in run ``run_id``, and the pipeline's params.

    A DAG that is not an mlpipe pipeline answers ``{"pipeline": false, "reason": ...}`` (Airflow shows
    the view's tab on every DAG run, and the view says so instead of failing).
    """
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.plugins.run_graph import not_a_pipeline_reason
    from airflow_provider_mlpipe.plugins.run_graph import run_graph as read_run_graph
    from airflow_provider_mlpipe.serialized_dags import latest_serialized_dag

    with create_session() as session:
        dag = latest_serialized_dag(dag_id, session=session)
        if dag is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no DAG named {dag_id!r}")
        reason = not_a_pipeline_reason(dag)
        if reason is not None:
            return {"dag_id": dag_id, "pipeline": False, "reason": reason}
        return read_run_graph(dag, _pipeline_run(session, dag_id, run_id), session=session)


def _pipeline_run(session: Any, dag_id: str, run_id: str) -> Any:
    """The DAG run ``run_id`` of pipeline ``dag_id``; 404 if there is none."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"pipeline {dag_id!r} has no run {run_id!r}")
    return run


@app.get(
    "/api/v1/pipelines/{dag_id}/runs/{run_id}/lineage",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
)
def run_lineage(dag_id: str, run_id: str) -> dict[str, Any]:
    """What each step of run ``run_id`` read and wrote, from the run's step records."""
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.plugins.run_graph import not_a_pipeline_reason
    from airflow_provider_mlpipe.plugins.run_lineage import run_lineage as read_run_lineage
    from airflow_provider_mlpipe.serialized_dags import latest_serialized_dag

    with create_session() as session:
        dag = latest_serialized_dag(dag_id, session=session)
        if dag is None or not_a_pipeline_reason(dag) is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no pipeline named {dag_id!r}")
        return read_run_lineage(dag, _pipeline_run(session, dag_id, run_id), session=session)


@app.get(
    "/api/v1/pipelines/{dag_id}/models/{group}/{version}/lineage",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))],
)
def model_lineage(dag_id: str, group: str, version: int, direction: str = "upstream") -> dict[str, Any]:
    """The lineage graph of model version ``group:version``; 404 if the index does not know it."""
    from airflow_provider_mlpipe.exceptions import LineageNotFoundError, RegistryError
    from airflow_provider_mlpipe.lineage.graph import LineageQuery
    from airflow_provider_mlpipe.settings import artifact_store_at

    if direction not in ("upstream", "downstream"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "direction must be upstream or downstream")
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry

    store = artifact_store_at(None)
    try:
        # Permissions are the pipeline's: only a version that this pipeline registered is shown.
        registered = ModelRegistry(store).get(group, version)
        if (registered.metadata or {}).get("pipeline") != dag_id:
            raise LineageNotFoundError(
                f"model {group} version {version} was not registered by pipeline {dag_id!r}"
            )
        graph = LineageQuery(store).model(group, version, direction)
    except (LineageNotFoundError, RegistryError) as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except MlpipeError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
    return graph.to_dict()


BUNDLE_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MEDIA_TYPES = {".js": "text/javascript", ".svg": "image/svg+xml", ".css": "text/css"}


@app.get("/ui/{name}")
def ui_bundle(name: str) -> FileResponse:
    """A file of the view's built bundle (``plugins/ui/dist`` in the package); 404 for anything else."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    path = resources.files("airflow_provider_mlpipe.plugins").joinpath("ui", "dist", name)
    if not BUNDLE_FILE.fullmatch(name) or suffix not in MEDIA_TYPES or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {name!r} in the mlpipe UI bundle")
    # The package ships a file system folder (a wheel unpacks), so the traversable is a real path.
    # no-cache: the browser revalidates (ETag) and picks up a new bundle after an upgrade.
    return FileResponse(str(path), media_type=MEDIA_TYPES[suffix], headers={"Cache-Control": "no-cache"})
