"""A failed step's reason under the real scheduler: api-server, scheduler (LocalExecutor) and dag-processor
on 127.0.0.1, started and always stopped by the fixture.

The worker's step operator records the reason (XCom, ERROR line in the real task log); the scheduler's
listener copies it into the task instance's note when the run fails; the Python client reads it over
the REST API, and reads a successful step's output back from the artifact store.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "fails"
RUN_TIMEOUT = 240
SPEC = """
    name: fails
    artifact_store: {store}
    parameters:
      - {{name: Rate, type: Float, default: 1e-3}}
    steps:
      - {{name: Prepare, type: function, function: "json:dumps", arguments: {{obj: {{param: Rate}}}}}}
      - name: Process
        type: processing
        code: crash.py
        depends_on: [Prepare]
        retry: {{max_attempts: 2, interval_seconds: 0}}
    """
CRASH = """
    import os, sys
    for number in range(1, 31):
        print(f"progress line {number}")
    print(f"try {os.environ['AIRFLOW_CTX_TRY_NUMBER']} gives up: disk full", file=sys.stderr)
    sys.exit(3)
    """


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-failures")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", dags / "mlpipe_pipelines.py")
    (dags / "fails.pipeline.yaml").write_text(textwrap.dedent(SPEC.format(store=home / "artifacts")).lstrip())
    (dags / "crash.py").write_text(textwrap.dedent(CRASH).lstrip())
    with airflow_servers(home, dags) as running:
        rest = RestCalls(running.url)
        wait_for_dags(rest, running, [PIPELINE])
        yield running


@pytest.fixture(scope="module")
def rest(servers: AirflowServers) -> RestCalls:
    return RestCalls(servers.url)


@pytest.fixture(scope="module")
def session(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe.client.rest import AirflowSession

    return AirflowSession(servers.url)


@pytest.fixture(scope="module")
def pipeline(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe import Pipeline

    return Pipeline.from_yaml(servers.dags_folder / "fails.pipeline.yaml")


@pytest.fixture(scope="module")
def failed(pipeline: Any, session: Any) -> Any:
    """An execution whose Process step fails on both of its tries."""
    execution = pipeline.start(session=session)
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "failed"
    return execution


def test_the_failure_reason_of_a_step_and_of_the_execution_over_rest(failed: Any):
    steps = {step.step_name: step for step in failed.list_steps()}
    process = steps["Process"]
    assert (process.status, process.attempts) == ("failed", 2)
    reason = process.failure_reason
    assert reason is not None
    header, *tail = reason.splitlines()
    assert header.endswith("crash.py exited with code 3; its last output lines:")
    assert tail == [f"progress line {n}" for n in range(12, 31)] + ["try 2 gives up: disk full"]
    assert steps["Prepare"].failure_reason is None
    assert failed.describe().failure_reason == f"step Process failed: {reason}"


def test_the_scheduler_notes_the_reason_on_the_failed_task_instance(failed: Any, rest: RestCalls):
    status, ti = rest.call(
        "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{failed.execution_id}/taskInstances/Process"
    )
    assert status == 200, ti
    assert ti["note"].startswith("Failed on try 2: ")
    assert ti["note"].endswith("progress line 30\ntry 2 gives up: disk full\n```")
    status, prepare = rest.call(
        "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{failed.execution_id}/taskInstances/Prepare"
    )
    assert status == 200 and prepare["note"] is None
    steps = {step.step_name: step for step in failed.list_steps()}
    assert steps["Process"].note == ti["note"]


def test_each_try_logs_its_reason_in_the_workers_task_log(failed: Any, servers: AirflowServers):
    folder = (
        servers.home / "logs" / f"dag_id={PIPELINE}" / f"run_id={failed.execution_id}" / "task_id=Process"
    )
    for attempt in (1, 2):
        lines = [json.loads(line) for line in (folder / f"attempt={attempt}.log").read_text().splitlines()]
        errors = [line["event"] for line in lines if line.get("level") == "error"]
        assert any(
            event.startswith(f"Step Process failed on try {attempt}: ")
            and event.endswith(f"try {attempt} gives up: disk full")
            for event in errors
        ), errors


def test_a_successful_steps_output_is_read_back_and_stop_leaves_a_finished_run(failed: Any, session: Any):
    from airflow_provider_mlpipe.exceptions import StepOutputError

    # Rate's default is 1e-3 (a YAML 1.2 number); json.dumps made it text.
    assert failed.result("Prepare") == "0.001"
    assert dict(failed.step_outputs("Prepare")) == {"result": "0.001"}
    with pytest.raises(StepOutputError, match="(?s)'Process' .* is failed, .* It failed: .*disk full$"):
        failed.step_outputs("Process")
    before = failed.describe()
    failed.stop()
    assert failed.describe() == before


def test_a_refused_selection_is_the_executions_failure_reason(session: Any, rest: RestCalls):
    status, run = rest.call(
        "POST",
        f"/api/v2/dags/{PIPELINE}/dagRuns",
        {"logical_date": None, "conf": {"selective_execution": {"selected_steps": ["Nope"]}}},
    )
    assert status == 200, run
    from airflow_provider_mlpipe.client.executions import PipelineExecution

    execution = PipelineExecution(session, PIPELINE, run["dag_run_id"])
    description = execution.wait(poll=0.5, timeout=RUN_TIMEOUT)
    assert description.status == "failed"
    assert description.failure_reason is not None
    assert description.failure_reason.startswith("Selective execution refused: ")
    assert "Nope" in description.failure_reason
