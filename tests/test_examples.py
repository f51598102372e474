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
