"""The "Selective run" view on real Airflow: api-server, scheduler and dag-processor on 127.0.0.1,
started and always stopped by the fixture, with a small fast pipeline (``browser/dags/shapes``) and a
DAG that is not a pipeline (``browser/dags/plain_dag.py``).

The endpoints the view uses and the audit log are checked over REST; the view itself in Debian's
headless Chromium, driven by ``browser/selective_view.mjs`` (npm's playwright-core): select steps on
the graph, bad parameter values, every kind of server error, preview, start with a double click, the
new run's page, light and dark mode. Screenshots are kept in ``test-artifacts/selective-view/`` (or
``$MLPIPE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers, wait_for_dags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BROWSER = Path(__file__).parent / "browser"
PIPELINE = "shapes"
PLAIN = "plain"
RUN_TIMEOUT = 240
SELECTIVE_RUNS = f"/mlpipe/api/v1/pipelines/{PIPELINE}/selectiveRuns"


def quoted(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")  # run ids hold "+" and ":"


class Rest(RestCalls):
    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.call(method, path, body)
        assert status == 200, (path, status, answer)
        return answer

    def runs(self) -> list[str]:
        return sorted(
            run["dag_run_id"]
            for run in self.ok("GET", f"/api/v2/dags/{PIPELINE}/dagRuns?limit=100")["dag_runs"]
        )

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        return self.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})[
            "dag_run_id"
        ]

    def wait(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            run = self.ok("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{quoted(run_id)}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not finish in {RUN_TIMEOUT} s")

    def graph(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/mlpipe/api/v1/pipelines/{dag_id}/runs/{quoted(run_id)}/graph")

    def audit_entries(self, **filters: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"event": "mlpipe.selective_run", "limit": 100, **filters})
        return self.ok("GET", f"/api/v2/eventLogs?{query}")["event_logs"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServers]:
    home = tmp_path_factory.mktemp("airflow-view")
    dags = home / "dags"
    shutil.copytree(BROWSER / "dags", dags)
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", dags / "mlpipe_pipelines.py")
    with airflow_servers(home, dags) as running:
        rest = Rest(running.url)
        wait_for_dags(rest, running, [PIPELINE, PLAIN])
        yield running


@pytest.fixture(scope="module")
def rest(servers: AirflowServers) -> Rest:
    return Rest(servers.url)


@pytest.fixture(scope="module")
def reference(rest: Rest) -> str:
    """A finished full run of the pipeline, the reference of every selective run here."""
    run_id = rest.trigger(PIPELINE)
    assert rest.wait(run_id)["state"] == "success"
    return run_id


def test_the_graph_of_a_run_and_of_a_dag_that_is_not_a_pipeline(rest: Rest, reference: str):
    graph = rest.graph(PIPELINE, reference)
    assert graph["pipeline"] is True and graph["run"]["finished"] is True
    steps = {step["name"]: step for step in graph["steps"]}
    assert list(steps) == ["Load", "Transform", "Total", "Check", "Big", "Small"]
    assert steps["Small"]["fate"] == "not_run" and steps["Big"]["fate"] == "ran"
    assert {"from": "Check", "to": "Big", "label": "true"} in graph["edges"]
    assert graph["params"]["Mode"]["schema"] == {"type": "string", "enum": ["fast", "careful"]}
    assert graph["params"]["Verbose"]["schema"] == {"type": "boolean"}

    plain_run = rest.trigger(PLAIN)
    assert rest.graph(PLAIN, plain_run) == {
        "dag_id": PLAIN,
        "pipeline": False,
        "reason": "DAG 'plain' is not an mlpipe pipeline (it has no 'mlpipe' tag)",
    }
    assert rest.call("GET", f"/mlpipe/api/v1/pipelines/{PIPELINE}/runs/no_such_run/graph")[0] == 404
    assert rest.call("GET", "/mlpipe/api/v1/pipelines/no_such_dag/runs/x/graph")[0] == 404


def test_the_ui_loads_the_view_from_the_plugin(rest: Rest):
    (plugin,) = [
        plugin for plugin in rest.ok("GET", "/api/v2/plugins")["plugins"] if plugin["name"] == "mlpipe"
    ]
    assert plugin["external_views"] == []
    (view,) = plugin["react_apps"]
    assert view["destination"] == "dag_run" and view["url_route"] == "mlpipe-selective-run"
    status, bundle = rest.call("GET", "/" + view["bundle_url"])
    assert status == 200 and "AirflowPlugin" in bundle


def test_each_selective_run_gets_one_audit_log_entry_with_the_user(rest: Rest, reference: str):
    body = {
        "selected_steps": ["Transform", "Total"],
        "source_run_id": reference,
        "parameters": {"Scale": 4.5},
    }
    # A dry run and a refused selection create nothing, so they leave no entry.
    rest.ok("POST", SELECTIVE_RUNS, {**body, "dry_run": True})
    assert rest.call("POST", SELECTIVE_RUNS, {**body, "selected_steps": ["Load", "Total"]})[0] == 400
    assert rest.audit_entries(dag_id=PIPELINE) == []

    created = rest.ok("POST", SELECTIVE_RUNS, body)
    (entry,) = rest.audit_entries(dag_id=PIPELINE)
    assert entry["run_id"] == created["run_id"] and entry["dag_id"] == PIPELINE
    # The user who made the run: in the test servers' all-admins mode, every caller is "Anonymous".
    run = rest.ok("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{quoted(created['run_id'])}")
    assert entry["owner"] == run["triggering_user_name"] == "Anonymous"
    assert json.loads(entry["extra"]) == {
        "selected_steps": ["Transform", "Total"],
        "source_run_id": reference,
        "reused_steps": ["Load"],
        "parameters": {"Scale": 4.5},
        "method": "POST",
    }

    assert rest.wait(created["run_id"])["state"] == "success"
    steps = {step["name"]: step for step in rest.graph(PIPELINE, created["run_id"])["steps"]}
    assert steps["Load"]["fate"] == "reused" and steps["Load"]["try_number"] == 0
    assert steps["Load"]["source_run_id"] == reference
    assert steps["Transform"]["fate"] == "ran" and steps["Check"]["fate"] == "not_run"


def browser_tools() -> tuple[str, str]:
    """Chromium and node, or skip: the only reason this test may not run."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    node = shutil.which("node")
    if chromium is None or node is None:
        pytest.skip(
            "the browser test needs Debian's chromium and node "
            f"(chromium: {chromium or 'missing'}, node: {node or 'missing'}); .ci/run installs both"
        )
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER, capture_output=True, text=True, timeout=300
        )
        assert installed.returncode == 0, installed.stderr
    return chromium, node


def artifacts_folder() -> Path:
    folder = Path(os.environ.get("MLPIPE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "selective-view"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def test_the_view_in_chromium(rest: Rest, servers: AirflowServers, reference: str):
    chromium, node = browser_tools()
    artifacts = artifacts_folder()
    plain_run = rest.trigger(PLAIN)
    runs_before = rest.runs()
    driver_input = {
        "artifacts": str(artifacts),
        "chromium": chromium,
        "dagId": PIPELINE,
        "plainDagId": PLAIN,
        "plainRunId": plain_run,
        "referenceRunId": reference,
        "url": servers.url,
    }
    driven = subprocess.run(
        [node, "selective_view.mjs", json.dumps(driver_input)],
        cwd=BROWSER,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(f"\nscreenshots of the Selective run view: {artifacts}")
    assert driven.returncode == 0, f"{driven.stdout}\n{driven.stderr}\n{servers.log('api-server')}"
    seen = json.loads(driven.stdout.strip().splitlines()[-1])

    # The double click created exactly one run, with the chosen parameter and selection.
    new_runs = sorted(set(rest.runs()) - set(runs_before))
    assert new_runs == [seen["newRunId"]]
    run = rest.ok("GET", f"/api/v2/dags/{PIPELINE}/dagRuns/{quoted(seen['newRunId'])}")
    assert run["conf"]["Scale"] == 3
    assert run["conf"]["selective_execution"]["selected_steps"] == ["Transform", "Total"]
    assert run["conf"]["selective_execution"]["source_run_id"] == reference
    assert run["state"] == "success"
    (entry,) = rest.audit_entries(run_id=seen["newRunId"])
    assert json.loads(entry["extra"])["parameters"] == {"Scale": 3}
    shots = sorted(path.name for path in artifacts.glob("*.png"))
    assert {"view-light.png", "new-run-dark.png", "preview-dark.png", "bad-input-light.png"} <= set(shots)
