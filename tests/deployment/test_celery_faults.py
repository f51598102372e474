"""Faults on the Celery deployment: a worker killed with SIGKILL mid-training, the workers of every
try of a step lost for good, the scheduler killed with SIGKILL mid-run and started again, and an S3
write the object store refuses.

Each test leaves the deployment as it found it (components started again), since the other modules
share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.artifacts.conftest import connection_json
from tests.artifacts.s3_server import start_s3_server
from tests.artifacts.test_s3 import ALLOW_ALL, _deny_put, _moto_api
from tests.deployment.cluster import WORKERS, CeleryCluster
from tests.deployment.conftest import wait_for_dags
from tests.deployment.launch import blob_key, model_of, registry_versions
from tests.integration.servers import RestCalls, wait_healthy

pytestmark = pytest.mark.deployment

RUN_TIMEOUT = 420


def start_slow(cluster: CeleryCluster, markers: Path, **parameters: Any) -> Any:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client import AirflowSession

    markers.mkdir(exist_ok=True)
    spec = cluster.servers.dags_folder / "slow.pipeline.yaml"
    return Pipeline.from_yaml(spec).start(
        parameters={"MarkerDir": str(markers), **parameters}, session=AirflowSession(cluster.url)
    )


def wait_for_file(cluster: CeleryCluster, path: Path, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared:\n{cluster.logs()}"
        cluster.servers.check_alive()
        time.sleep(0.2)
    time.sleep(0.2)  # written in one call, but let it land
    return path.read_text()


def worker_of(cluster: CeleryCluster, pid: int) -> str:
    """The name of the Celery worker whose process tree holds process ``pid``."""
    ancestors = {parent.pid for parent in psutil.Process(pid).parents()}
    names = [name for name in WORKERS if cluster.servers.processes[name].pid in ancestors]
    assert len(names) == 1, (pid, ancestors)
    return names[0]


def kill_tree(cluster: CeleryCluster, name: str) -> None:
    """SIGKILL a component and everything it started (task processes and scripts too), as when its
    machine dies: nothing of it may finish or clean up."""
    root = psutil.Process(cluster.servers.processes[name].pid)
    tree = [root, *root.children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    cluster.servers.kill(name)
    psutil.wait_procs(tree[1:], timeout=30)


def versions_of(cluster: CeleryCluster, group: str, run_id: str) -> list[dict[str, Any]]:
    return [v for v in registry_versions(cluster, group) if v["metadata"]["execution_id"] == run_id]


def test_a_worker_killed_mid_training_leaves_no_half_model_and_the_retry_completes(
    cluster: CeleryCluster, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    partial = f"half a model {uuid.uuid4()}"
    (markers / "partial-content").write_text(partial)
    execution = start_slow(cluster, markers, Hang=True)
    pid = int(wait_for_file(cluster, markers / "started-1"))
    victim = worker_of(cluster, pid)
    kill_tree(cluster, victim)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    try:
        # The scheduler finds the try without heartbeat, fails it, and the retry goes to the other worker.
        description = execution.wait(poll=2, timeout=RUN_TIMEOUT)
        steps = {step.step_name: step for step in execution.list_steps()}
        assert description.status == "success", (steps, cluster.logs())
    finally:
        cluster.servers.start(victim)
    assert steps["Train"].attempts == 2 and (markers / "started-2").exists()
    assert steps["Register"].attempts == 1

    # The killed try's half model never reached the store; the run's model is the retry's.
    assert (
        blob_key(cluster, "sha256:" + hashlib.sha256(partial.encode()).hexdigest())
        not in cluster.object_keys()
    )
    (version,) = versions_of(cluster, "slow", execution.execution_id)
    assert json.loads(model_of(cluster, version, "model.json")) == {"complete": True, "attempt": 2}
    assert version["model"]["digest"] == steps["Train"].outputs["model"]["digest"]


def test_the_scheduler_killed_mid_run_and_started_again_completes_the_run(
    cluster: CeleryCluster, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    execution = start_slow(cluster, markers, Seconds=20)
    wait_for_file(cluster, markers / "started-1")
    kill_tree(cluster, "scheduler")
    time.sleep(5)  # the step goes on on its worker without a scheduler
    cluster.servers.start("scheduler")
    wait_healthy(cluster.servers, time.monotonic() + 180)
    description = execution.wait(poll=2, timeout=RUN_TIMEOUT)
    steps = {step.step_name: step for step in execution.list_steps()}
    assert description.status == "success", (steps, cluster.logs())
    # The running try was left to finish, not run again; one model registered.
    assert steps["Train"].attempts == 1 and not (markers / "started-2").exists()
    assert len(versions_of(cluster, "slow", execution.execution_id)) == 1


def test_a_step_whose_workers_are_lost_for_good_fails_after_its_retries_and_other_runs_go_on(
    cluster: CeleryCluster, tmp_path: Path
) -> None:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client import AirflowSession

    markers = tmp_path / "markers"
    execution = start_slow(cluster, markers, HangEvery=True)
    killed = []
    try:
        # Each try's worker dies with it, as a machine that is gone: the first...
        first = worker_of(cluster, int(wait_for_file(cluster, markers / "started-1")))
        kill_tree(cluster, first)
        killed.append(first)
        # ...while the other worker still takes other executions,
        grid = Pipeline.from_yaml(cluster.servers.dags_folder / "grid.pipeline.yaml")
        other = grid.start(parameters={"Depth": 2}, session=AirflowSession(cluster.url))
        assert other.wait(poll=2, timeout=RUN_TIMEOUT).status == "success", cluster.logs()
        # ...then the retry's, on that other worker: no worker is left, and no try left.
        second = worker_of(cluster, int(wait_for_file(cluster, markers / "started-2")))
        assert second != first
        kill_tree(cluster, second)
        killed.append(second)
        description = execution.wait(poll=2, timeout=RUN_TIMEOUT)
        steps = {step.step_name: step for step in execution.list_steps()}
    finally:
        for name in killed:
            cluster.servers.start(name)
    assert description.status == "failed", (steps, cluster.logs())
    assert steps["Train"].status == "failed" and steps["Train"].attempts == 2
    assert steps["Register"].status == "upstream_failed"
    assert not (markers / "started-3").exists()
    # The step could not say why (its process was killed); the execution says which step failed and
    # what that means.
    reason = description.failure_reason or ""
    assert "step(s) Train failed" in reason and "lost or killed worker" in reason, reason
    assert versions_of(cluster, "slow", execution.execution_id) == []
    # With its workers back, the deployment runs executions again.
    again = grid.start(parameters={"Depth": 4}, session=AirflowSession(cluster.url))
    assert again.wait(poll=2, timeout=RUN_TIMEOUT).status == "success", cluster.logs()


DENIED_SPEC = """
    name: denied
    artifact_store: s3://{bucket}/denied
    aws_conn_id: mlpipe_denied
    steps:
      - name: Train
        type: training
        code: grid/train.py
        hyperparameters: {{depth: 3, eta: 0.1}}
      - name: Register
        type: register_model
        model_data: {{step: Train, output: model}}
        model_package_group_name: denied
    """


@pytest.fixture
def denying_store(cluster: CeleryCluster) -> Iterator[dict[str, str]]:
    """A second S3 server that checks IAM permissions, where the connection ``mlpipe_denied`` (in
    Airflow's DB, as an operator adds one) may read and list everything but write nothing under
    ``denied/``; a bucket there."""
    import boto3

    with start_s3_server() as endpoint:
        _moto_api(endpoint, "reset-auth", b"inf")  # set-up runs without authentication
        kwargs = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        setup = {**kwargs, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **setup)
        bucket = f"denied-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", **setup).create_bucket(Bucket=bucket)
        iam.create_user(UserName="writer")
        iam.put_user_policy(UserName="writer", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        iam.put_user_policy(
            UserName="writer", PolicyName="no-writes", PolicyDocument=json.dumps(_deny_put(bucket, "denied"))
        )
        key = iam.create_access_key(UserName="writer")["AccessKey"]
        connection = json.loads(connection_json(endpoint, key["AccessKeyId"], key["SecretAccessKey"]))
        rest = RestCalls(cluster.url)
        status, body = rest.call(
            "POST",
            "/api/v2/connections",
            {**connection, "connection_id": "mlpipe_denied", "extra": json.dumps(connection["extra"])},
        )
        assert status == 201, body
        _moto_api(endpoint, "reset-auth", b"0")  # from now on every request is authenticated
        try:
            yield {"bucket": bucket, "setup": json.dumps(setup)}
        finally:
            _moto_api(endpoint, "reset-auth", b"inf")
            rest.call("DELETE", "/api/v2/connections/mlpipe_denied")


def test_a_denied_s3_write_fails_the_step_naming_the_store_and_the_artifact(
    cluster: CeleryCluster, denying_store: dict[str, str]
) -> None:
    import boto3

    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client import AirflowSession

    bucket = denying_store["bucket"]
    spec = cluster.servers.dags_folder / "denied.pipeline.yaml"
    spec.write_text(textwrap.dedent(DENIED_SPEC.format(bucket=bucket)).lstrip())
    try:
        wait_for_dags(cluster, ("denied",))
        execution = Pipeline.from_yaml(spec).start(session=AirflowSession(cluster.url))
        description = execution.wait(poll=2, timeout=RUN_TIMEOUT)
    finally:
        spec.unlink()
    steps = {step.step_name: step for step in execution.list_steps()}
    assert description.status == "failed", steps
    assert steps["Train"].status == "failed" and steps["Register"].attempts == 0
    reason = steps["Train"].failure_reason or ""
    assert f"artifact store s3://{bucket}/denied" in reason, reason
    assert "AccessDenied" in reason and "sha256:" in reason, reason

    # Nothing half-written: no object under the store's prefix, no unfinished upload, no registry entry.
    admin = boto3.client("s3", **json.loads(denying_store["setup"]))
    _moto_api(admin.meta.endpoint_url, "reset-auth", b"inf")
    assert admin.list_objects_v2(Bucket=bucket, Prefix="denied/").get("KeyCount", 0) == 0
    assert admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
