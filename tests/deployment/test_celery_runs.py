"""Pipelines on the Celery deployment (Postgres, Redis, two Celery workers, S3 through an Airflow
connection): the abalone example end to end, 20 executions started at once from 20 processes, 8
selective runs started at once against one reference, and the four selective-execution use cases
of ``tests/integration/test_selective_servers.py`` (imported, so the cases are defined once).

The 20 are of ``grid`` (a training script without xgboost and a registration: two tasks), not of
abalone: 20 abalone runs (six tasks each, xgboost) take too long on 2 cores for a test suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deployment.cluster import CeleryCluster
from tests.deployment.launch import blob_key, model_of, registry_versions, start_at_once
from tests.integration import test_selective_servers as cases
from tests.integration.servers import AirflowServers

# The selective-execution fixtures and cases, run here against the Celery deployment: pytest collects
# them in this module, where ``servers`` is the deployment's.
from tests.integration.test_selective_servers import (  # noqa: F401
    Rest,
    assert_reused,
    pipeline,
    reference,
    rest,
    session,
)

# In this order, first in the module: the first case's reference is the latest successful run.
test_rerun_train_with_a_new_hyperparameter_through_the_python_api = (
    cases.test_rerun_train_with_a_new_hyperparameter_through_the_python_api
)
test_rerun_train_and_evaluate_through_the_plugin_endpoint = (
    cases.test_rerun_train_and_evaluate_through_the_plugin_endpoint
)
test_rerun_the_failed_step_of_a_failed_run_with_a_plain_trigger = (
    cases.test_rerun_the_failed_step_of_a_failed_run_with_a_plain_trigger
)
test_run_the_rarely_taken_fail_branch = cases.test_run_the_rarely_taken_fail_branch

pytestmark = pytest.mark.deployment


@pytest.fixture(scope="module")
def servers(cluster: CeleryCluster) -> AirflowServers:
    return cluster.servers


def test_the_abalone_example_runs_on_celery_with_its_artifacts_in_s3(
    cluster: CeleryCluster,
    rest: Rest,  # noqa: F811
    reference: str,  # noqa: F811
) -> None:
    # ``reference`` is the abalone run through pipeline.start(): it succeeded, every step once.
    instances = rest.task_instances(reference)
    assert {ti["state"] for name, ti in instances.items() if name != "FailOnMse"} == {"success"}
    # Each try ran on one of the two Celery workers (the queue is theirs alone).
    assert all(ti["queue"] == "default" for ti in instances.values() if ti["try_number"])
    keys = set(cluster.object_keys())
    for step in ("Preprocess", "Train", "Evaluate"):
        for name, output in rest.record(reference, step)["outputs"].items():
            assert output["uri"].startswith(f"{cluster.store_url}/"), (step, name, output)
            assert blob_key(cluster, output["digest"]) in keys, (step, name)
    versions = [
        v for v in registry_versions(cluster, "abalone") if v["metadata"]["execution_id"] == reference
    ]
    assert len(versions) == 1, versions
    assert versions[0]["model"]["digest"] == rest.record(reference, "Train")["outputs"]["model"]["digest"]
    assert b'"learner"' in model_of(cluster, versions[0], "xgboost-model.json")


def test_twenty_executions_started_at_once_from_twenty_processes_all_succeed(
    cluster: CeleryCluster, tmp_path: Path
) -> None:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client import AirflowSession

    spec = cluster.servers.dags_folder / "grid.pipeline.yaml"
    jobs = [
        {"name": f"d{depth}-e{eta}", "parameters": {"Depth": depth, "Eta": eta}}
        for depth in range(1, 11)
        for eta in (0.1, 0.3)
    ]
    before = {v["version"] for v in registry_versions(cluster, "grid")}
    started = start_at_once(cluster, spec, jobs, tmp_path)
    assert len(set(started.values())) == 20

    grid, client = Pipeline.from_yaml(spec), AirflowSession(cluster.url)
    for job in jobs:
        execution = grid.execution(started[job["name"]], session=client)
        description = execution.wait(poll=2, timeout=600)
        assert description.status == "success", (job, execution.list_steps(), cluster.logs())
        assert description.parameters == job["parameters"]

    # One registered model per execution: its own run, its own parameters, its own model.
    new = [v for v in registry_versions(cluster, "grid") if v["version"] not in before]
    assert len(new) == 20 and len({v["version"] for v in new}) == 20
    by_run = {v["metadata"]["execution_id"]: v for v in new}
    assert set(by_run) == set(started.values())
    for job in jobs:
        version = by_run[started[job["name"]]]
        assert version["metadata"]["parameters"] == job["parameters"]
        model = json.loads(model_of(cluster, version, "model.json"))
        assert model == {"depth": job["parameters"]["Depth"], "eta": job["parameters"]["Eta"]}


def test_eight_selective_runs_started_at_once_reuse_one_reference(
    cluster: CeleryCluster,
    rest: Rest,  # noqa: F811
    reference: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = cluster.servers.dags_folder / "abalone.pipeline.yaml"
    jobs = [
        {
            "name": f"depth-{depth}",
            "parameters": {"MaxDepth": depth},
            "select": ["Train"],
            "reference": reference,
        }
        for depth in (2, 3, 4, 6, 7, 8, 9, 10)  # not 5, the reference's: each run makes another model
    ]
    started = start_at_once(cluster, spec, jobs, tmp_path)
    assert len(set(started.values())) == 8
    reference_train = rest.record(reference, "Train")["outputs"]["model"]["digest"]
    models = set()
    for job in jobs:
        run_id = started[job["name"]]
        run = rest.wait(run_id)
        assert run["state"] == "success", (job, rest.task_instances(run_id), cluster.logs())
        assert run["conf"]["selective_execution"]["source_run_id"] == reference
        # Preprocess never started: its outputs are the reference's, by digest.
        assert_reused(rest, run_id, reference, ["Preprocess"])
        train = rest.record(run_id, "Train")
        assert train["parameters"]["MaxDepth"] == job["parameters"]["MaxDepth"]
        models.add(train["outputs"]["model"]["digest"])
    assert len(models) == 8 and reference_train not in models
