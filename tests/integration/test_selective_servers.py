"""Selective execution end to end on real Airflow: api-server, scheduler (LocalExecutor) and
dag-processor on 127.0.0.1 with SQLite, started and always stopped by the fixture.

The four use cases of the issue run through the Python API (``pipeline.start`` over the REST API) and
through REST directly (the plugin endpoint, and a plain trigger with a ``selective_execution`` conf
block); each checks that reused steps never started (try number 0, note), that selected steps ran
with the new parameters, and that their outputs differ where they should.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID
from tests.integration.servers import (
    AirflowServers,
    RestCalls,
    airflow_servers,
    dag_run_events,
    wait_for_dags,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "abalone"
STEPS = ["Preprocess", "Train", "Evaluate", "CheckMse", "RegisterModel", "FailOnMse"]
RUN_TIMEOUT = 240


class Rest(RestCalls):
    """Raw calls to the api-server, and what the tests read of the abalone runs."""

    def runs(self) -> list[str]:
        status, body = self.call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns?limit=100")
        assert status == 200, body
        return sorted(run["dag_run_id"] for run in body["dag_runs"])

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        status, body = self.call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances")
        assert status == 200, body
        return {ti["task_id"]: ti for ti in body["task_instances"]}

    def record(self, run_id: str, step: str) -> Any:
        status, body = self.call(
            "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances/{step}/xcomEntries/return_value"
        )
        return body.get("value") if status == 200 else None

    def wait(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            status, run = self.call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{run_id}")
            assert status == 200, run
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not finish in {RUN_TIMEOUT} s")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-servers")
    dags = home / "dags"
    dags.mkdir()
    for name in ("mlpipe_pipelines.py", "abalone.pipeline.yaml", "abalone_python.py", ".airflowignore"):
        shutil.copy(REPO / "dags" / name, dags / name)
    shutil.copytree(REPO / "dags" / "abalone", dags / "abalone")
    with airflow_servers(home, dags) as running:
        rest = Rest(running.url)
        wait_for_dags(rest, running, [PIPELINE, "abalone_python"])
        yield running


@pytest.fixture(scope="module")
def rest(servers: AirflowServers) -> Rest:
    return Rest(servers.url)


@pytest.fixture(scope="module")
def session(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe.client.rest import AirflowSession

    return AirflowSession(servers.url)


@pytest.fixture(scope="module")
def pipeline(servers: AirflowServers) -> Any:
    from airflow_provider_mlpipe.spec import load_pipeline_file

    return load_pipeline_file(servers.dags_folder / "abalone.pipeline.yaml")


@pytest.fixture(scope="module")
def reference(pipeline: Any, session: Any, rest: Rest) -> str:
    """A full run of the abalone pipeline through ``pipeline.start()``: the reference for the others."""
    execution = pipeline.start(session=session)
    description = execution.wait(poll=0.5, timeout=RUN_TIMEOUT)
    assert description.status == "success", rest.task_instances(execution.execution_id)
    steps = {step.step_name: step for step in execution.list_steps()}
    assert set(steps) == set(STEPS)
    assert steps["RegisterModel"].status == "success" and steps["FailOnMse"].status == "skipped"
    assert all(steps[name].attempts == 1 for name in ("Preprocess", "Train", "Evaluate", "CheckMse"))
    return execution.execution_id


def snapshot(rest: Rest, run_id: str) -> dict[str, Any]:
    """Everything of a run a selective run must never change: states, tries, notes, records."""
    return {
        step: (ti["state"], ti["try_number"], ti["note"], rest.record(run_id, step))
        for step, ti in rest.task_instances(run_id).items()
    }


def output_digest(record: Any, output: str) -> str:
    return record["outputs"][output]["digest"]


def assert_reused(rest: Rest, run_id: str, source: str, steps: list[str]) -> None:
    instances = rest.task_instances(run_id)
    for step in steps:
        ti = instances[step]
        assert ti["state"] == "success", (step, ti["state"])
        assert ti["try_number"] == 0, f"reused step {step} started a task process"
        assert ti["note"] == f"reused from run {source}", ti["note"]
        assert output_digest(rest.record(run_id, step), next(iter(rest.record(source, step)["outputs"]))) == (
            output_digest(rest.record(source, step), next(iter(rest.record(source, step)["outputs"])))
        )


def test_rerun_train_with_a_new_hyperparameter_through_the_python_api(
    pipeline: Any, session: Any, rest: Rest, reference: str
) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig

    before = snapshot(rest, reference)
    execution = pipeline.start(
        selective_execution_config=SelectiveExecutionConfig(["Train"], source_run_id=None),
        parameters={"MaxDepth": 8},
        session=session,
    )
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "success"

    steps = {step.step_name: step for step in execution.list_steps()}
    assert steps["Preprocess"].attempts == 0 and steps["Preprocess"].source_run_id == reference
    assert steps["Train"].attempts == 1 and steps["Train"].status == "success"
    for name in ("Evaluate", "CheckMse", "RegisterModel", "FailOnMse"):
        assert steps[name].status == "skipped" and steps[name].attempts == 0
        assert steps[name].note == "not selected: downstream of the selected steps"
    assert_reused(rest, execution.execution_id, reference, ["Preprocess"])
    assert execution.list_parameters()["MaxDepth"] == 8
    description = execution.describe()
    assert description.selective_execution["source_run_id"] == reference
    assert description.selective_execution["reused_steps"] == ["Preprocess"]
    # Train ran with max_depth 8: another model than the reference's (max_depth 5).
    new_train = rest.record(execution.execution_id, "Train")
    assert new_train["parameters"]["MaxDepth"] == 8
    assert output_digest(new_train, "model") != output_digest(rest.record(reference, "Train"), "model")
    assert snapshot(rest, reference) == before, "the reference run was changed"


def test_rerun_train_and_evaluate_through_the_plugin_endpoint(rest: Rest, reference: str) -> None:
    before = snapshot(rest, reference)
    status, body = rest.call(
        "POST",
        f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
        {"selected_steps": ["Train", "Evaluate"], "source_run_id": reference, "parameters": {"Eta": 0.05}},
    )
    assert status == 200, body
    assert body["reused_steps"] == ["Preprocess"]
    run = rest.wait(body["run_id"])
    assert run["state"] == "success"
    assert run["note"].startswith("Selective execution of Train, Evaluate")
    assert_reused(rest, body["run_id"], reference, ["Preprocess"])
    instances = rest.task_instances(body["run_id"])
    assert instances["Train"]["try_number"] == 1 and instances["Evaluate"]["try_number"] == 1
    new_evaluation = rest.record(body["run_id"], "Evaluate")
    assert output_digest(new_evaluation, "evaluation") != output_digest(
        rest.record(reference, "Evaluate"), "evaluation"
    )
    assert snapshot(rest, reference) == before


def test_rerun_the_failed_step_of_a_failed_run_with_a_plain_trigger(
    pipeline: Any, session: Any, rest: Rest, reference: str, servers: AirflowServers
) -> None:
    # A negative learning rate makes xgboost refuse to train: the run fails at Train (after its retry).
    failed = pipeline.start(parameters={"Eta": -1.0}, session=session)
    assert failed.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "failed"
    failed_steps = {step.step_name: step for step in failed.list_steps()}
    assert failed_steps["Train"].status == "failed" and failed_steps["Preprocess"].status == "success"

    # A step downstream of the failed one cannot reuse it: refused before any run is created.
    runs_before = rest.runs()
    status, body = rest.call(
        "POST",
        f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
        {"selected_steps": ["Evaluate"], "source_run_id": failed.execution_id},
    )
    assert status == 400 and "Train (it did not succeed in that run: failed)" in body["detail"]
    assert rest.runs() == runs_before

    # `airflow dags trigger --conf` with the selective block and a fixed Eta: the scheduler's listener
    # records Preprocess as reused before anything is scheduled, and only Train runs.
    conf = {
        "selective_execution": {"selected_steps": ["Train"], "source_run_id": failed.execution_id},
        "Eta": 0.2,
    }
    triggered = servers.airflow("dags", "trigger", PIPELINE, "--conf", json.dumps(conf), "--output", "json")
    assert triggered.returncode == 0, triggered.stderr
    run_id = re.search(r'"dag_run_id": "([^"]+)"', triggered.stdout).group(1)  # after Airflow's own log lines
    run = rest.wait(run_id)
    assert run["state"] == "success", rest.task_instances(run_id)
    assert run["conf"]["selective_execution"]["reused_steps"] == ["Preprocess"]
    assert_reused(rest, run_id, failed.execution_id, ["Preprocess"])
    instances = rest.task_instances(run_id)
    assert instances["Train"]["state"] == "success" and instances["Train"]["try_number"] == 1
    assert rest.record(run_id, "Train")["parameters"] == {"Eta": 0.2, "MaxDepth": 5, "NumRound": 50}
    assert failed_steps == {step.step_name: step for step in failed.list_steps()}


def test_run_the_rarely_taken_fail_branch(pipeline: Any, session: Any, rest: Rest, reference: str) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig

    execution = pipeline.start(
        selective_execution_config=SelectiveExecutionConfig(
            ["Train", "Evaluate", "CheckMse", "FailOnMse"], source_run_id=reference
        ),
        parameters={"MseThreshold": 0.5},
        session=session,
    )
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "failed"  # the Fail step fails the run
    steps = {step.step_name: step for step in execution.list_steps()}
    assert steps["Preprocess"].attempts == 0 and steps["Preprocess"].source_run_id == reference
    assert steps["CheckMse"].metadata["outcome"] is False
    assert steps["FailOnMse"].status == "failed" and steps["FailOnMse"].attempts == 1
    assert steps["RegisterModel"].status == "skipped" and steps["RegisterModel"].attempts == 0


def test_a_selective_run_whose_selected_step_fails_is_a_failed_run(
    pipeline: Any, session: Any, rest: Rest, reference: str, servers: AirflowServers
) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig

    # The steps after Train are recorded as skipped at creation: judged by its last steps alone the
    # run would be a success. The pipeline's outcome task makes the scheduler itself decide "failed",
    # so listeners and callbacks never hear "success".
    execution = pipeline.start(
        selective_execution_config=SelectiveExecutionConfig(["Train"], reference),
        parameters={"Eta": -1.0},
        session=session,
    )
    description = execution.wait(poll=0.5, timeout=RUN_TIMEOUT)
    assert description.status == "failed"
    assert {step.step_name: step.status for step in execution.list_steps()}["Train"] == "failed"
    assert rest.task_instances(execution.execution_id)[OUTCOME_TASK_ID]["state"] == "upstream_failed"
    deadline = time.monotonic() + 30
    while not dag_run_events(servers.home, execution.execution_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert dag_run_events(servers.home, execution.execution_id) == ["failed"]
    # A full run that succeeds is heard as a success, once.
    assert dag_run_events(servers.home, reference) == ["success"]


def test_steps_the_reference_did_not_run_are_never_reused(
    pipeline: Any, session: Any, rest: Rest, reference: str, servers: AirflowServers
) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig

    # Seen: run R, a selective run S of Train only, then RegisterModel from S: CheckMse was "reused
    # (skipped there)" and a model was registered without its MSE being checked.
    only_train = pipeline.start(
        selective_execution_config=SelectiveExecutionConfig(["Train"], reference),
        parameters={"MaxDepth": 3},
        session=session,
    )
    assert only_train.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "success"
    runs_before = rest.runs()
    for selected, missing in ((["RegisterModel"], "CheckMse"), (["CheckMse"], "Evaluate")):
        status, body = rest.call(
            "POST",
            f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
            {"selected_steps": selected, "source_run_id": only_train.execution_id},
        )
        assert status == 400, body
        assert (
            f"{missing} (it did not run in that run: run {only_train.execution_id} was a selective run"
            in (body["detail"])
        )
    assert rest.runs() == runs_before

    # The same selection in a plain trigger's conf: the run fails with the reason, nothing runs.
    conf = {
        "selective_execution": {"selected_steps": ["RegisterModel"], "source_run_id": only_train.execution_id}
    }
    status, run = rest.call("POST", f"/api/v2/dags/{PIPELINE}/dagRuns", {"logical_date": None, "conf": conf})
    assert status == 200, run
    finished = rest.wait(run["dag_run_id"])
    assert finished["state"] == "failed"
    assert "CheckMse (it did not run in that run" in finished["note"]
    assert all(ti["try_number"] == 0 for ti in rest.task_instances(run["dag_run_id"]).values())

    # Selecting what S did not run works: Preprocess is followed back to the run where it ran.
    status, body = rest.call(
        "POST",
        f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
        {
            "selected_steps": ["Evaluate", "CheckMse", "RegisterModel"],
            "source_run_id": only_train.execution_id,
        },
    )
    assert status == 200, body
    assert rest.wait(body["run_id"])["state"] == "success"
    instances = rest.task_instances(body["run_id"])
    assert instances["Preprocess"]["note"] == (
        f"reused from run {only_train.execution_id} (computed in run {reference})"
    )
    assert rest.record(body["run_id"], "Preprocess")["origin_run_id"] == reference
    assert instances["RegisterModel"]["state"] in ("success", "skipped")


def test_clearing_a_selective_run_reruns_the_selected_steps_only(
    rest: Rest, reference: str, servers: AirflowServers
) -> None:
    status, body = rest.call(
        "POST",
        f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
        {"selected_steps": ["Train"], "source_run_id": reference, "parameters": {"MaxDepth": 4}},
    )
    assert status == 200, body
    run_id = body["run_id"]
    assert rest.wait(run_id)["state"] == "success"
    first_train = rest.record(run_id, "Train")

    # "Clear" on the whole run in the Airflow UI.
    status, cleared = rest.call(
        "POST",
        f"/api/v2/dags/{PIPELINE}/clearTaskInstances",
        {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True},
    )
    assert status == 200, cleared
    deadline = time.monotonic() + RUN_TIMEOUT
    while rest.task_instances(run_id)["Train"]["try_number"] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rest.wait(run_id)["state"] == "success", rest.task_instances(run_id)

    instances = rest.task_instances(run_id)
    # The reused step started (it was cleared) but took the reference's outputs again: no recompute.
    preprocess = instances["Preprocess"]
    assert preprocess["state"] == "success" and preprocess["try_number"] == 1
    assert preprocess["note"] == f"reused from run {reference}"
    record = rest.record(run_id, "Preprocess")
    assert record["source_run_id"] == reference
    assert record["outputs"] == rest.record(reference, "Preprocess")["outputs"]
    # The selected step ran again; the steps downstream of it still do not run.
    assert instances["Train"]["try_number"] == 2
    assert rest.record(run_id, "Train")["outputs"] == first_train["outputs"]
    for name in ("Evaluate", "CheckMse", "RegisterModel", "FailOnMse"):
        assert instances[name]["state"] == "skipped", (name, instances[name])
        assert instances[name]["note"] == "not selected: downstream of the selected steps"


def test_a_plain_trigger_with_a_refused_selection_fails_the_run_with_the_reason(
    rest: Rest, reference: str
) -> None:
    status, run = rest.call(
        "POST",
        f"/api/v2/dags/{PIPELINE}/dagRuns",
        {"logical_date": None, "conf": {"selective_execution": {"selected_steps": ["Trian"]}}},
    )
    assert status == 200, run
    finished = rest.wait(run["dag_run_id"])
    assert finished["state"] == "failed"
    assert "Selective execution refused" in finished["note"] and "Trian" in finished["note"]
    assert all(ti["try_number"] == 0 for ti in rest.task_instances(run["dag_run_id"]).values())
    # A refused run ran nothing: it never becomes the default reference of a later selective run.
    status, planned = rest.call(
        "POST",
        f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns",
        {"selected_steps": ["Train"], "dry_run": True},
    )
    assert status == 200, planned
    assert planned["source_run_id"] not in (None, run["dag_run_id"])


def test_a_plain_trigger_with_a_misspelt_parameter_is_refused_not_run(rest: Rest) -> None:
    status, run = rest.call(
        "POST", f"/api/v2/dags/{PIPELINE}/dagRuns", {"logical_date": None, "conf": {"MaxDepht": 3}}
    )
    assert status == 200, run
    finished = rest.wait(run["dag_run_id"])
    assert finished["state"] == "failed"
    assert finished["note"].startswith("Run refused: unknown parameter(s) MaxDepht (did you mean MaxDepth?)")
    assert all(ti["try_number"] == 0 for ti in rest.task_instances(run["dag_run_id"]).values())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"selected_steps": ["Trian"]}, "has no step(s) Trian"),
        ({"selected_steps": []}, "select at least one step"),
        ({"selected_steps": ["Preprocess", "CheckMse"]}, "Train, Evaluate lie between selected steps"),
        ({"selected_steps": ["Train"], "parameters": {"MaxDepht": 3}}, "unknown parameter(s) MaxDepht"),
        ({"selected_steps": ["Train"], "parameters": {"MaxDepth": "deep"}}, "MaxDepth='deep'"),
        ({"selected_steps": ["Evaluate"], "parameters": {"MaxDepth": 9}}, "MaxDepth was 5, now 9"),
        ({"selected_steps": ["Train"], "source_run_id": "no_such_run"}, "has no run 'no_such_run'"),
    ],
)
def test_bad_selections_are_refused_before_any_run_is_created(
    rest: Rest, reference: str, body: dict[str, Any], message: str
) -> None:
    before = rest.runs()
    body = {"source_run_id": reference, **body}
    status, response = rest.call("POST", f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns", body)
    assert status == 400, response
    assert message in response["detail"]
    assert rest.runs() == before


def test_a_running_reference_and_a_run_of_another_pipeline_are_refused(
    rest: Rest, session: Any, pipeline: Any, reference: str
) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig
    from airflow_provider_mlpipe.exceptions import SelectiveExecutionError

    running = pipeline.start(session=session)
    status, other = rest.call(
        "POST", "/api/v2/dags/abalone_python/dagRuns", {"logical_date": None, "conf": {}}
    )
    assert status == 200, other
    before = rest.runs()
    with pytest.raises(SelectiveExecutionError, match="must have finished"):
        pipeline.start(
            selective_execution_config=SelectiveExecutionConfig(["Train"], running.execution_id),
            session=session,
        )
    with pytest.raises(
        SelectiveExecutionError, match="is a run of pipeline 'abalone_python', not of 'abalone'"
    ):
        pipeline.start(
            selective_execution_config=SelectiveExecutionConfig(["Train"], other["dag_run_id"]),
            session=session,
        )
    assert rest.runs() == before
    # Clean-up, not the subject (stop() is tested with the executions API): on a slow machine the
    # run may also have finished by now, and stop() leaves a finished run as it is.
    running.stop()
    assert running.wait(poll=0.5, timeout=RUN_TIMEOUT).status in ("failed", "success")


def test_parallel_starts_from_threads_and_processes_are_independent(
    pipeline: Any, servers: AirflowServers, rest: Rest, reference: str
) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig
    from airflow_provider_mlpipe.client.rest import AirflowSession

    started: dict[int, str] = {}
    errors: list[BaseException] = []

    def start(depth: int) -> None:
        try:  # a session per thread, as separate users would have
            execution = pipeline.start(
                selective_execution_config=SelectiveExecutionConfig(["Train"], reference),
                parameters={"MaxDepth": depth},
                session=AirflowSession(servers.url),
            )
            started[depth] = execution.execution_id
        except BaseException as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=start, args=(depth,)) for depth in (2, 3, 4)]
    processes = {
        depth: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_provider_mlpipe.cli.main",
                "start",
                PIPELINE,
                "--select",
                "Train",
                "--from-run",
                reference,
                "--param",
                f"MaxDepth={depth}",
                "--api-url",
                servers.url,
                "--dags-folder",
                str(servers.dags_folder),
            ],
            env=servers.env,
            cwd=servers.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for depth in (6, 7)
    }
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for depth, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        started[depth] = out.strip().split()[2]  # "Started execution <id> of 'abalone'"
    assert not errors, errors
    assert len(set(started.values())) == 5

    models = set()
    for depth, run_id in started.items():
        assert rest.wait(run_id)["state"] == "success"
        train = rest.record(run_id, "Train")
        assert train["parameters"]["MaxDepth"] == depth
        models.add(output_digest(train, "model"))
        assert_reused(rest, run_id, reference, ["Preprocess"])
    assert len(models) == 5, "each run trained its own model"


def test_executions_commands_and_the_selective_view_endpoints(
    servers: AirflowServers, rest: Rest, reference: str
) -> None:
    command = [sys.executable, "-m", "airflow_provider_mlpipe.cli.main", "executions"]
    listed = subprocess.run(
        [*command, "list", PIPELINE, "--api-url", servers.url],
        env=servers.env,
        cwd=servers.home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert reference in listed.stdout and "selective: Train" in listed.stdout
    steps = subprocess.run(
        [*command, "steps", PIPELINE, reference, "--api-url", servers.url],
        env=servers.env,
        cwd=servers.home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert steps.returncode == 0, steps.stderr
    assert all(name in steps.stdout for name in STEPS)

    run_id = urllib.parse.quote(reference, safe="")  # run ids hold "+", a space in a query string
    status, info = rest.call("GET", f"/mlpipe/api/v1/pipelines/{PIPELINE}/steps?run_id={run_id}")
    assert status == 200
    assert [step["name"] for step in info["steps"]] == STEPS
    assert info["reference"]["run_id"] == reference
    status, graph = rest.call("GET", f"/mlpipe/api/v1/pipelines/{PIPELINE}/runs/{run_id}/graph")
    assert status == 200 and [step["name"] for step in graph["steps"]] == STEPS
    status, plugins = rest.call("GET", "/api/v2/plugins")
    view = next(plugin for plugin in plugins["plugins"] if plugin["name"] == "mlpipe")["react_apps"][0]
    assert view["destination"] == "dag_run"
    status, bundle = rest.call("GET", "/" + view["bundle_url"])
    assert status == 200 and "AirflowPlugin" in bundle


def test_a_changed_upstream_definition_is_refused(
    servers: AirflowServers, rest: Rest, reference: str
) -> None:
    # Last test of the module: it changes a script in the servers' dags folder.
    script = servers.dags_folder / "abalone" / "scripts" / "preprocess.py"
    script.write_text(script.read_text() + "\n# changed after the reference run\n")
    deadline = time.monotonic() + 120
    body = {"selected_steps": ["Train"], "source_run_id": reference, "dry_run": True}
    while True:  # until the dag-processor has parsed the change
        status, response = rest.call("POST", f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns", body)
        if status == 400:
            break
        assert time.monotonic() < deadline, "the change was never parsed"
        time.sleep(1)
    assert (
        "Preprocess (its code changed since that run: code file preprocess.py changed)" in response["detail"]
    )
