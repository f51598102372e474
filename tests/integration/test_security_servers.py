"""Who may do what, with real users: api-server, scheduler and dag-processor on 127.0.0.1 with the
simple auth manager configured with users and roles (not everyone admin), tokens from ``/auth/token``
with a user name and password, and short-lived tokens (``[api_auth] jwt_expiration_time``).

Each endpoint of the provider's plugin and Airflow's own trigger are called anonymously, as a viewer
(read-only role) and as a user (the role that may run DAGs); a long ``wait()`` outlives its token; the
real task log of a step keeps hyperparameters and loses secrets.
"""

from __future__ import annotations

import shutil
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PIPELINE = "guarded"
RUN_TIMEOUT = 240
TOKEN_LIFETIME = 15  # seconds: a wait() of a few polls outlives it
USERS = {
    "admin": ("admin", "admin-pw-1"),
    "viewer": ("viewer", "viewer-pw-2"),
    "ml": ("user", "ml-pw-3"),  # the simple auth manager's "user" role: may run DAGs
}
SPEC = """
    name: guarded
    parameters:
      - {name: Flag, type: String, default: ""}
      - {name: Token, type: String, default: "tok-live-55aa77", secret: true}
    steps:
      - {name: Hold, type: function, function: "hold.py:wait_for", arguments: {path: {param: Flag}}}
      - name: Show
        type: processing
        code: show.py
        depends_on: [Hold]
        arguments: ["--depth", 7, "--token", {param: Token}]
        env: {SERVICE_TOKEN: {param: Token}}
    """
HOLD = """
    import time
    from pathlib import Path


    def wait_for(path):
        while path and not Path(path).exists():
            time.sleep(0.2)
        return path
    """
SHOW = """
    import os, sys
    print("arguments:", " ".join(sys.argv[1:]))
    print("service token:", os.environ["SERVICE_TOKEN"])
    print("worker settings visible:", sorted(name for name in os.environ if name.startswith("AIRFLOW__")))
    """


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-security")
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", dags / "mlpipe_pipelines.py")
    for name, text in (("guarded.pipeline.yaml", SPEC), ("hold.py", HOLD), ("show.py", SHOW)):
        (dags / name).write_text(textwrap.dedent(text).lstrip())
    settings = {
        "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME": str(TOKEN_LIFETIME),
        "AIRFLOW__API_AUTH__JWT_LEEWAY": "0",
    }
    with airflow_servers(home, dags, users=USERS, extra_env=settings) as running:
        admin = as_user(running, "admin")
        wait_for_dags(admin, running, [PIPELINE])
        yield running


def as_user(servers: AirflowServers, name: str) -> RestCalls:
    return RestCalls(servers.url, username=name, password=USERS[name][1])


def wait_for_run(rest: RestCalls, run_id: str) -> dict[str, Any]:
    quoted = urllib.parse.quote(run_id, safe="")
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        status, run = rest.call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{quoted}")
        assert status == 200, run
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(0.5)
    raise TimeoutError(run_id)


@pytest.fixture(scope="module")
def finished_run(servers: AirflowServers) -> str:
    admin = as_user(servers, "admin")
    status, run = admin.call("POST", f"/api/v2/dags/{PIPELINE}/dagRuns", {"logical_date": None})
    assert status == 200, run
    assert wait_for_run(admin, run["dag_run_id"])["state"] == "success"
    return str(run["dag_run_id"])


def endpoints(run_id: str) -> dict[str, tuple[str, str, Any]]:
    """Every endpoint of the plugin that needs a login, and Airflow's own trigger."""
    quoted = urllib.parse.quote(run_id, safe="")
    selective = f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns"
    body = {"selected_steps": ["Show"], "source_run_id": run_id}
    return {
        "selective run": ("POST", selective, body),
        "selective dry run": ("POST", selective, {**body, "dry_run": True}),
        "steps": ("GET", f"/mlpipe/api/v1/pipelines/{PIPELINE}/steps", None),
        "run graph": ("GET", f"/mlpipe/api/v1/pipelines/{PIPELINE}/runs/{quoted}/graph", None),
        "trigger": ("POST", f"/api/v2/dags/{PIPELINE}/dagRuns", {"logical_date": None}),
    }


def run_ids(servers: AirflowServers) -> set[str]:
    status, body = as_user(servers, "admin").call("GET", f"/api/v2/dags/{PIPELINE}/dagRuns?limit=1000")
    assert status == 200, body
    return {run["dag_run_id"] for run in body["dag_runs"]}


def test_anonymous_calls_are_refused_with_401(servers: AirflowServers, finished_run: str) -> None:
    rest = as_user(servers, "viewer")
    before = run_ids(servers)
    for name, (method, path, body) in endpoints(finished_run).items():
        status, answer = rest.call(method, path, body, anonymous=True)
        assert status == 401, (name, status, answer)
    assert run_ids(servers) == before
    # The view's bundle is static code, served without a login like the Airflow UI's own assets.
    status, bundle = rest.call("GET", "/mlpipe/ui/selective-run.js", anonymous=True)
    assert status == 200 and "AirflowPlugin" in bundle


def test_a_viewer_reads_but_cannot_start_runs(servers: AirflowServers, finished_run: str) -> None:
    viewer = as_user(servers, "viewer")
    before = run_ids(servers)
    expected = {
        "selective run": 403,
        "selective dry run": 403,
        "trigger": 403,
        "steps": 200,
        "run graph": 200,
    }
    seen = {
        name: viewer.call(method, path, body)[0]
        for name, (method, path, body) in endpoints(finished_run).items()
    }
    assert seen == expected
    assert run_ids(servers) == before, "a viewer made a run"


def test_a_user_with_the_user_role_starts_runs(servers: AirflowServers, finished_run: str) -> None:
    ml = as_user(servers, "ml")
    calls = endpoints(finished_run)
    status, plan = ml.call(*calls["selective dry run"])
    assert status == 200 and plan["reused_steps"] == ["Hold"], plan
    status, created = ml.call(*calls["selective run"])
    assert status == 200, created
    assert wait_for_run(ml, created["run_id"])["state"] == "success"
    status, triggered = ml.call(*calls["trigger"])
    assert status == 200, triggered
    assert wait_for_run(ml, triggered["dag_run_id"])["state"] == "success"


def test_the_python_client_as_a_viewer_is_refused_and_not_retried(servers: AirflowServers) -> None:
    from airflow_provider_mlpipe import SelectiveExecutionConfig
    from airflow_provider_mlpipe.client.rest import AirflowSession
    from airflow_provider_mlpipe.exceptions import AirflowApiError, ApiAuthenticationError

    viewer = AirflowSession(servers.url, username="viewer", password=USERS["viewer"][1])
    before = run_ids(servers)
    with pytest.raises(AirflowApiError, match="HTTP 403"):
        viewer.start(PIPELINE)
    with pytest.raises(AirflowApiError, match="HTTP 403"):
        viewer.start(PIPELINE, selective_execution_config=SelectiveExecutionConfig(["Show"]))
    assert run_ids(servers) == before
    assert viewer.list_executions(PIPELINE), "reading is allowed"
    with pytest.raises(ApiAuthenticationError, match="log in as 'viewer'"):
        AirflowSession(servers.url, username="viewer", password="wrong").list_executions(PIPELINE)


def test_a_long_wait_outlives_its_token(
    servers: AirflowServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client.rest import AirflowSession

    monkeypatch.setenv("MLPIPE_API_USERNAME", "ml")
    monkeypatch.setenv("MLPIPE_API_PASSWORD", USERS["ml"][1])
    session = AirflowSession(servers.url)
    flag = tmp_path / "release"
    execution = Pipeline.from_yaml(servers.dags_folder / "guarded.pipeline.yaml").start(
        parameters={"Flag": str(flag)}, session=session
    )
    first_token = session.connection.client.configuration.access_token
    outcome: dict[str, Any] = {}

    def wait() -> None:
        try:
            outcome["status"] = execution.wait(poll=0.5, timeout=RUN_TIMEOUT).status
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error

    waiting = threading.Thread(target=wait)
    waiting.start()
    # Hold the run until the first token is refused: the wait then outlives it for sure.
    probe = as_user(servers, "ml")
    probe.username, probe.token = None, first_token  # calls with the session's first token only
    deadline = time.monotonic() + RUN_TIMEOUT
    while probe.call("GET", f"/api/v2/dags/{PIPELINE}")[0] != 401:
        assert time.monotonic() < deadline, "the token never expired"
        time.sleep(1)
    flag.touch()
    waiting.join(RUN_TIMEOUT)
    assert outcome == {"status": "success"}
    assert session.connection.client.configuration.access_token != first_token, "the token was renewed"


def test_the_task_log_shows_hyperparameters_and_hides_secrets(
    servers: AirflowServers, finished_run: str
) -> None:
    admin = as_user(servers, "admin")
    quoted = urllib.parse.quote(finished_run, safe="")
    status, log = admin.call(
        "GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{quoted}/taskInstances/Show/logs/1?full_content=true"
    )
    assert status == 200, log
    text = str(log)
    assert "--depth 7" in text, "the command line and its hyperparameters are logged"
    assert "arguments: --depth 7 --token ***" in text
    assert "service token: ***" in text
    assert "tok-live-55aa77" not in text
    assert "worker settings visible: []" in text, "the script saw the worker's AIRFLOW__ settings"
