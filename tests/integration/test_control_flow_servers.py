"""The abalone_control example (a fan-out tuning step, a loop, a nested condition and a rejoin) under the
real scheduler: api-server, scheduler (LocalExecutor) and dag-processor on 127.0.0.1, started and
always stopped by the fixture. Trials run as mapped task instances, at most two at once; the loop's
later iteration is skipped; a selective run of the step after the tuning step, planned by the
provider's endpoint from the serialized DAG, reuses the tuning step without running a trial."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "abalone_control"
RUN_TIMEOUT = 600


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-control")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", dags / "mlpipe_pipelines.py")
    shutil.copy(REPO / "dags" / "abalone_control.pipeline.yaml", dags / "abalone_control.pipeline.yaml")
    shutil.copytree(REPO / "dags" / "abalone", dags / "abalone")
    with airflow_servers(home, dags) as running:
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

    return Pipeline.from_yaml(servers.dags_folder / "abalone_control.pipeline.yaml")


@pytest.fixture(scope="module")
def full_run(pipeline: Any, session: Any) -> Any:
    execution = pipeline.start(session=session)
    assert execution.wait(poll=1, timeout=RUN_TIMEOUT).status == "success", execution.describe()
    return execution


def test_trials_iterations_and_branches_under_the_scheduler(full_run: Any, servers: AirflowServers):
    steps = {step.step_name: step for step in full_run.list_steps()}
    assert not any(name.startswith("_") for name in steps)
    assert len(steps["Tune"].metadata["trials"]) == 4
    assert steps["Retrain"].metadata == {"iterations": 2, "max_iterations": 3, "condition_met": True}
    assert [steps[f"Retrain.{i}.TrainRound"].status for i in (1, 2, 3)] == ["success", "success", "skipped"]
    assert steps["Retrain.3.TrainRound"].attempts == 0  # skipped before it ever started
    assert (steps["RegisterPending"].status, steps["RegisterApproved"].status) == ("success", "skipped")
    assert steps["BatchPredict"].status == "success"
    # Each trial is a mapped task instance of _Tune.each, named in the UI by its hyperparameters.
    status, mapped = RestCalls(servers.url).call(
        "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{full_run.execution_id}/taskInstances/_Tune.each/listMapped"
    )
    assert status == 200, mapped
    assert mapped["total_entries"] == 4
    assert {ti["state"] for ti in mapped["task_instances"]} == {"success"}
    assert all("max_depth" in (ti["rendered_map_index"] or "") for ti in mapped["task_instances"])


def test_a_selective_run_after_the_tuning_step_reuses_it(full_run: Any, pipeline: Any, session: Any):
    from airflow_provider_mlpipe import SelectiveExecutionConfig

    config = SelectiveExecutionConfig(["Retrain.1.TrainRound"], source_run_id=full_run.execution_id)
    execution = pipeline.start(selective_execution_config=config, session=session)
    assert execution.wait(poll=1, timeout=RUN_TIMEOUT).status == "success", execution.describe()
    steps = {step.step_name: step for step in execution.list_steps()}
    assert (steps["Tune"].status, steps["Tune"].source_run_id, steps["Tune"].attempts) == (
        "success",
        full_run.execution_id,
        0,
    )
    assert (steps["Retrain.1.TrainRound"].status, steps["Retrain.1.TrainRound"].attempts) == ("success", 1)
    assert steps["Retrain"].status == "skipped"
