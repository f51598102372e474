"""Step caching and the fingerprint under the real api-server, scheduler (LocalExecutor) and
dag-processor on 127.0.0.1: hits noted by the scheduler's listener, ``no_cache`` over the REST API, and
a changed data file never silently reused by a selective run, whether the DAG processor has parsed the
change yet (the planner refuses) or not (the selected step refuses on its worker)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags
from tests.project import make_project, runs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "cached_servers"
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-cache")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", dags / "mlpipe_pipelines.py")
    make_project(dags, PIPELINE)
    with airflow_servers(
        home, dags, extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    ) as running:
        rest = RestCalls(running.url)
        wait_for_dags(rest, running, [PIPELINE])
        yield running


@pytest.fixture(scope="module")
def session(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe.client.rest import AirflowSession

    return AirflowSession(servers.url)


@pytest.fixture(scope="module")
def pipeline(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe import Pipeline

    return Pipeline.from_yaml(servers.dags_folder / f"{PIPELINE}.pipeline.yaml")


def finished(execution: Any) -> dict[str, Any]:
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "success", execution.list_steps()
    return {step.step_name: step for step in execution.list_steps()}


def test_hits_are_noted_by_the_scheduler_and_no_cache_forces_misses(
    servers: AirflowServers, session: Any, pipeline: Any
):
    root = servers.dags_folder
    first = pipeline.start(session=session)
    finished(first)
    second = pipeline.start(session=session, parameters={"Unused": 5})
    steps = finished(second)

    assert (runs(root, "prep"), runs(root, "train")) == (1, 1)
    for name in ("Prep", "Train"):
        assert steps[name].cache_hit and steps[name].source_run_id == first.execution_id
        assert steps[name].note.startswith(f"cache hit: outputs of run {first.execution_id}")

    forced = pipeline.start(session=session, no_cache=True)
    steps = finished(forced)
    assert not steps["Prep"].cache_hit and (runs(root, "prep"), runs(root, "train")) == (2, 2)
    assert forced.describe().no_cache


def test_a_changed_data_file_is_never_reused_by_a_selective_run(
    servers: AirflowServers, session: Any, pipeline: Any
):
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig

    root = servers.dags_folder
    finished(pipeline.start(session=session, no_cache=True))
    before = runs(root, "train")
    (root / "data" / "raw.csv").write_text("x,y\n40,41\n")
    config = SelectiveExecutionConfig(["Train", "Register"])
    try:
        execution = pipeline.start(session=session, selective_execution_config=config)
    except SelectiveExecutionError as refused:
        # The DAG processor had parsed the change: the planner refused before creating a run.
        assert "Prep (input file data/raw.csv (inputs.raw) changed since that run)" in str(refused)
    else:
        # It had not: the run was created, and its selected step refused to compute from old outputs.
        assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "failed"
        train = {step.step_name: step for step in execution.list_steps()}["Train"]
        assert "reused upstream of it changed" in train.failure_reason
        assert "input file data/raw.csv (inputs.raw) changed" in train.failure_reason
    assert runs(root, "train") == before
