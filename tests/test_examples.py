"""The abalone example end to end: both the YAML and the Python pipeline run through real Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

pytestmark = pytest.mark.usefixtures("airflow_home")


def _pipeline(name: str):
    from airflow_provider_mlpipe.discovery import find_pipeline

    return find_pipeline(DAGS, name)


def _output(result, step: str, output: str):
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value
    from airflow_provider_mlpipe.settings import artifact_store_for

    ref = ArtifactRef.from_dict(result.task(step).return_value["outputs"][output])
    return load_value(artifact_store_for(), ref)


@pytest.mark.parametrize("name", ["abalone", "abalone_python"])
def test_abalone_pipeline_trains_evaluates_and_registers(name: str):
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally
    from airflow_provider_mlpipe.settings import artifact_store_for

    registry = ModelRegistry(artifact_store_for())
    before = len(registry.list_versions("abalone")) if "abalone" in registry.list_groups() else 0

    result = run_dag_locally(build_dag(_pipeline(name)))

    states = {task.task_id: task.state for task in result.tasks}
    assert result.state == "success", states
    assert states == {
        "Preprocess": "success",
        "Train": "success",
        "Evaluate": "success",
        "CheckMse": "success",
        "RegisterModel": "success",
        "FailOnMse": "skipped",
    }
    model_dir = Path(_output(result, "Train", "model"))
    assert (model_dir / "xgboost-model.json").stat().st_size > 1000
    evaluation = json.loads((Path(_output(result, "Evaluate", "evaluation")) / "evaluation.json").read_text())
    mse = evaluation["regression_metrics"]["mse"]["value"]
    assert isinstance(mse, float)
    assert 0 < mse < 10, mse  # the mean of rings is 9.93 and its variance about 10.4: a model beats that
    assert result.task("CheckMse").return_value["metadata"]["outcome"] is True

    versions = registry.list_versions("abalone")
    assert len(versions) == before + 1
    latest = versions[-1]
    assert latest.approval_status == "PendingManualApproval"
    assert latest.metrics["mse"]["value"] == mse
    assert latest.model["digest"] == result.task("Train").return_value["outputs"]["model"]["digest"]


def test_a_low_threshold_takes_the_fail_branch():
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    result = run_dag_locally(build_dag(_pipeline("abalone")), conf={"MseThreshold": 0.5, "NumRound": 5})
    states = {task.task_id: task.state for task in result.tasks}
    assert result.state == "failed"
    assert states["FailOnMse"] == "failed"
    assert states["RegisterModel"] == "skipped"
    assert result.task("CheckMse").return_value["metadata"]["outcome"] is False


@pytest.fixture(scope="module")
def control_run():
    """The abalone_control example run once in full."""
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    return run_dag_locally(build_dag(_pipeline("abalone_control")))


def test_abalone_control_tunes_loops_and_takes_the_nested_branch(control_run):
    states = {task.task_id: task.state for task in control_run.tasks}
    assert control_run.state == "success", states
    # Four trials (max_depth 3..4 x eta 0.2, 0.4), recorded with their metrics.
    tune = control_run.task("Tune").return_value["metadata"]
    assert len(tune["trials"]) == 4
    assert all("validation_mse" in trial["metrics"] for trial in tune["trials"])
    best = min(tune["trials"], key=lambda trial: trial["metrics"]["validation_mse"])
    assert tune["best_hyperparameters"] == {
        "num_round": 10,
        "objective": "reg:squarederror",
        **best["hyperparameters"],
    }
    # The loop trains with 3, then 6 rounds: the second MSE is below the target, the third iteration is skipped.
    loop = control_run.task("Retrain").return_value["metadata"]
    assert loop == {"iterations": 2, "max_iterations": 3, "condition_met": True}
    assert [states[f"Retrain.{i}.TrainRound"] for i in (1, 2, 3)] == ["success", "success", "skipped"]
    mse = json.loads((Path(_output(control_run, "Retrain", "evaluation")) / "evaluation.json").read_text())
    mse = mse["regression_metrics"]["mse"]["value"]
    assert mse <= 5.5
    # Nested condition: the MSE is under MseThreshold but not under ApproveBelow -> pending approval,
    # and the batch prediction after both register steps runs (a rejoin).
    assert (states["CheckMse"], states["CheckQuality"]) == ("success", "success")
    assert (states["RegisterApproved"], states["RegisterPending"], states["FailOnMse"]) == (
        "skipped",
        "success",
        "skipped",
    )
    predictions = Path(_output(control_run, "BatchPredict", "predictions")) / "predictions.csv"
    assert len(predictions.read_text().splitlines()) == 628  # the 627 test rows and a header


def test_a_selective_run_of_the_step_after_tuning_reuses_the_best_trial(control_run):
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig

    pipeline = _pipeline("abalone_control")
    config = SelectiveExecutionConfig(["Retrain.1.TrainRound"], source_run_id=control_run.run_id)
    execution = pipeline.start(selective_execution_config=config, session=LocalSession())
    assert execution.describe().status == "success"
    steps = {step.step_name: step for step in execution.list_steps()}
    assert (steps["Tune"].status, steps["Tune"].source_run_id, steps["Tune"].attempts) == (
        "success",
        control_run.run_id,
        0,
    )
    assert steps["Tune"].outputs == control_run.task("Tune").return_value["outputs"]
    assert steps["Retrain.1.TrainRound"].status == "success" and steps["Retrain.1.TrainRound"].attempts == 1
    # The same best hyperparameters and rounds train the same model (the same bytes, the same digest).
    first = control_run.task("Retrain.1.TrainRound").return_value["outputs"]["model"]
    assert steps["Retrain.1.TrainRound"].outputs["model"]["digest"] == first["digest"]
    assert steps["Retrain.1.EvaluateRound"].status == "skipped"
    # No trial ran again: the tuning step's internal tasks skipped themselves.
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        internal = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == "abalone_control",
                TaskInstance.run_id == execution.execution_id,
                TaskInstance.task_id.like("\\_Tune%", escape="\\"),
            )
        ).all()
    assert {task_id: str(getattr(state, "value", state)) for task_id, state in internal} == {
        "_Tune.items": "skipped",
        "_Tune.each": "skipped",
    }
