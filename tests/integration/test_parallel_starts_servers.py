"""Many executions started at once from separate processes, on the real api-server, scheduler and
dag-processor with SQLite as Airflow sets it up by itself: the api-server without the long busy
timeout and the WAL journaling the other integration tests set (SQLite's default 5 s wait, rollback
journal), so that it may answer "database is locked" (HTTP 500) under load, and the client's retries
are what keeps every start working, once. The scheduler and dag-processor get the README's busy
timeout: on SQLite's 5 s default a burst of starts can kill the scheduler itself (seen on a loaded
CI machine: every later run stayed queued), which no client can retry; the README's advice for such
bursts is the busy timeout, and Postgres beyond it.

Also here: the README's parallel-launch example, run as the README gives it; the selective endpoint's
client-chosen run ids; a paused pipeline, which ``wait()`` and ``mlpipe start --wait`` name as such.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "quick"
RUN_TIMEOUT = 240
SPEC = """
    name: quick
    parameters:
      - {name: MaxDepth, type: Integer, default: 5}
      - {name: Eta, type: Float, default: 0.2}
    steps:
      - {name: Prepare, type: function, function: "json:dumps", arguments: {obj: {param: MaxDepth}}}
      - {name: Train, type: function, function: "json:dumps", arguments: {obj: {param: Eta}}, depends_on: [Prepare]}
    """
# One process of the burst: it gets ready (imports, its own session), says so, waits for the signal
# that every process is ready, then starts its execution, so that the starts really come at once.
STARTER = """
    import json, sys, time
    from pathlib import Path
    from airflow_provider_mlpipe import Pipeline, SelectiveExecutionConfig
    from airflow_provider_mlpipe.client.rest import AirflowSession

    url, spec, kind, value, reference, folder = sys.argv[1:7]
    pipeline = Pipeline.from_yaml(spec)
    session = AirflowSession(url)
    (Path(folder) / f"ready-{kind}-{value}").touch()
    while not (Path(folder) / "go").exists():
        time.sleep(0.01)
    if kind == "full":
        execution = pipeline.start(parameters={"MaxDepth": int(value)}, session=session)
    else:
        config = SelectiveExecutionConfig(["Train"], reference)
        execution = pipeline.start(selective_execution_config=config, parameters={"Eta": float(value)}, session=session)
    print(json.dumps({"kind": kind, "value": value, "run_id": execution.execution_id}))
    """


class Rest(RestCalls):
    def __init__(self, servers: AirflowServers) -> None:
        super().__init__(servers.url)
        self.servers = servers

    def runs(self, dag_id: str = PIPELINE) -> dict[str, dict[str, Any]]:
        status, body = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1000")
        assert status == 200, body
        return {run["dag_run_id"]: run for run in body["dag_runs"]}

    def wait(self, run_id: str, dag_id: str = PIPELINE) -> dict[str, Any]:
        quoted = urllib.parse.quote(run_id, safe="")
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            status, run = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
            if status == 200 and run["state"] in ("success", "failed"):
                return run
            # A dead scheduler leaves every run queued: say so at once, with its log.
            self.servers.check_alive()
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not finish in {RUN_TIMEOUT} s\n{self.servers.log('scheduler')}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-parallel")
    dags = home / "dags"
    dags.mkdir()
    for name in ("mlpipe_pipelines.py", "abalone.pipeline.yaml", ".airflowignore"):
        shutil.copy(REPO / "dags" / name, dags / name)
    shutil.copytree(REPO / "dags" / "abalone", dags / "abalone")
    (dags / "quick.pipeline.yaml").write_text(textwrap.dedent(SPEC).lstrip())
    # As Airflow sets SQLite up by itself: no busy timeout (5 s), no WAL journaling, for the
    # api-server and the clients; the README's busy timeout for the scheduler and dag-processor.
    patient = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60"}
    with airflow_servers(
        home,
        dags,
        sqlite_busy_timeout=None,
        sqlite_wal=False,
        component_env={"scheduler": patient, "dag-processor": patient},
    ) as running:
        assert "timeout" not in running.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        rest = Rest(running)
        wait_for_dags(rest, running, [PIPELINE, "abalone"])
        yield running


@pytest.fixture(scope="module")
def rest(servers: AirflowServers) -> Rest:
    return Rest(servers)


@pytest.fixture(scope="module")
def spec(servers: AirflowServers) -> Path:
    return servers.dags_folder / "quick.pipeline.yaml"


@pytest.fixture(scope="module")
def reference(servers: AirflowServers, spec: Path, rest: Rest) -> str:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client.rest import AirflowSession

    execution = Pipeline.from_yaml(spec).start(session=AirflowSession(servers.url))
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "success"
    return execution.execution_id


def test_ten_starts_at_once_from_ten_processes_each_make_exactly_one_run(
    servers: AirflowServers, rest: Rest, spec: Path, reference: str, tmp_path: Path
) -> None:
    script = tmp_path / "starter.py"
    script.write_text(textwrap.dedent(STARTER).lstrip())
    before = set(rest.runs())
    jobs = [("full", str(depth)) for depth in range(1, 6)] + [("selective", f"0.{n}") for n in range(1, 6)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), servers.url, str(spec), kind, value, reference, str(tmp_path)],
            env=servers.env,
            cwd=servers.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, value in jobs
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < len(jobs):
            assert time.monotonic() < deadline, "the starters never got ready"
            assert all(process.poll() is None for process in processes), [p.communicate() for p in processes]
            time.sleep(0.1)
        (tmp_path / "go").touch()
        results = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    started = {
        (line["kind"], line["value"]): line["run_id"] for line in map(_json, (out for out, _ in results))
    }
    assert len(started) == len(jobs) and len(set(started.values())) == len(jobs)

    # Exactly one run per start: nothing duplicated by a retry, nothing lost.
    assert set(rest.runs()) - before == set(started.values())
    for (kind, value), run_id in started.items():
        run = rest.wait(run_id)
        assert run["state"] == "success", (kind, value, run)
        if kind == "full":
            assert run["conf"] == {"MaxDepth": int(value)}
        else:
            assert run["conf"]["Eta"] == float(value)
            assert run["conf"]["selective_execution"]["source_run_id"] == reference


def _json(text: str) -> dict[str, Any]:
    import json

    return dict(json.loads(text.strip().splitlines()[-1]))


def test_the_selective_endpoint_answers_a_repeated_request_with_the_run_it_made(
    rest: Rest, reference: str
) -> None:
    path = f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns"
    body = {"selected_steps": ["Train"], "parameters": {"Eta": 0.7}, "run_id": "grid-eta-0.7"}
    before = set(rest.runs())
    status, first = rest.call("POST", path, body)
    assert status == 200, first
    status, again = rest.call("POST", path, body)  # as a client does when the first answer was lost
    assert status == 200, again
    assert first["run_id"] == again["run_id"] == "grid-eta-0.7" and again["existing"] is True
    assert again["reused_steps"] == first["reused_steps"] == ["Prepare"]
    assert set(rest.runs()) - before == {"grid-eta-0.7"}

    status, other = rest.call("POST", path, {**body, "parameters": {"Eta": 0.8}})
    assert status == 409 and "made by another request" in other["detail"]
    status, bad = rest.call("POST", path, {**body, "run_id": "no spaces allowed"})
    assert status == 400 and "does not match regex pattern" in bad["detail"]
    assert set(rest.runs()) - before == {"grid-eta-0.7"}
    assert rest.wait("grid-eta-0.7")["state"] == "success"


def readme_parallel_example() -> str:
    """The README's parallel-launch example: its one Python block that starts processes."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    examples = [block for block in blocks if "ProcessPoolExecutor" in block]
    assert len(examples) == 1, "the README has one parallel-launch example"
    return examples[0]


def test_the_readme_parallel_launch_example_runs_as_written(
    servers: AirflowServers, rest: Rest, tmp_path: Path
) -> None:
    script = tmp_path / "parallel_grid.py"
    script.write_text(readme_parallel_example())
    spec = servers.dags_folder / "abalone.pipeline.yaml"
    before = set(rest.runs("abalone"))
    done = subprocess.run(
        [sys.executable, str(script), servers.url, str(spec)],
        env=servers.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    new_runs = set(rest.runs("abalone")) - before
    assert len(lines) == len(new_runs) == 4, done.stdout
    for line in lines:
        assert line.endswith(" success"), line
        assert any(run_id in line for run_id in new_runs), line


def test_waiting_on_a_paused_pipeline_says_it_is_paused(
    servers: AirflowServers, rest: Rest, spec: Path
) -> None:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client.rest import AirflowSession
    from airflow_provider_mlpipe.exceptions import PipelinePausedError

    status, body = rest.call("PATCH", f"/api/v2/dags/{PIPELINE}", {"is_paused": True})
    assert status == 200, body
    try:
        execution = Pipeline.from_yaml(spec).start(session=AirflowSession(servers.url))
        with pytest.raises(PipelinePausedError) as raised:
            execution.wait(poll=0.5, timeout=RUN_TIMEOUT)
        assert f"pipeline 'quick' is paused: its run {execution.execution_id} stays queued" in str(
            raised.value
        )
        assert "airflow dags unpause quick" in str(raised.value)

        command = [sys.executable, "-m", "airflow_provider_mlpipe.cli.main", "start", PIPELINE]
        command += ["--api-url", servers.url, "--dags-folder", str(servers.dags_folder)]
        waited = subprocess.run(
            [*command, "--wait", "--poll", "0.5"],
            env=servers.env,
            cwd=servers.home,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert waited.returncode == 2, waited.stdout + waited.stderr
        assert "mlpipe: error: pipeline 'quick' is paused" in waited.stderr
        assert "still queued" not in waited.stderr
        started = subprocess.run(
            command, env=servers.env, cwd=servers.home, capture_output=True, text=True, timeout=300
        )
        assert started.returncode == 0, started.stderr
        assert "Note: pipeline 'quick' is paused" in started.stderr
    finally:
        status, body = rest.call("PATCH", f"/api/v2/dags/{PIPELINE}", {"is_paused": False})
        assert status == 200, body
    # Unpaused, the queued run starts and finishes.
    assert execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status == "success"
