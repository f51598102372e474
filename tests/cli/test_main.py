"""The mlpipe command, run as a real subprocess with its own AIRFLOW_HOME."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MLPIPE = [sys.executable, "-m", "airflow_provider_mlpipe.cli.main"]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("cli-home")
    dags = home / "dags"
    shutil.copytree(REPO / "dags", dags)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__MLPIPE__ARTIFACT_STORE=str(home / "artifacts"),
    )
    return env


def mlpipe(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLPIPE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_validate_ok_and_errors(cli_env: dict[str, str], tmp_path: Path):
    ok = mlpipe(
        cli_env, "validate", str(REPO / "dags/abalone.pipeline.yaml"), str(REPO / "dags/abalone_python.py")
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout and "'abalone'" in ok.stdout and "'abalone_python'" in ok.stdout

    bad = tmp_path / "bad.pipeline.yaml"
    bad.write_text("name: bad\nsteps:\n  - {name: A, type: function, function: 'json:dumps', colour: red}\n")
    failed = mlpipe(cli_env, "validate", str(bad))
    assert failed.returncode == 1
    assert "bad.pipeline.yaml:3" in failed.stderr
    assert "'A'" in failed.stderr and "colour" in failed.stderr


def test_list_shows_both_examples(cli_env: dict[str, str]):
    listed = mlpipe(cli_env, "list")
    assert listed.returncode == 0, listed.stderr
    assert "abalone.pipeline.yaml" in listed.stdout
    assert "abalone_python.py" in listed.stdout


def test_run_refuses_a_wrong_parameter_before_running(cli_env: dict[str, str]):
    refused = mlpipe(cli_env, "run", "abalone", "--param", "MaxDepth=deep")
    assert refused.returncode == 2
    assert "MaxDepth" in refused.stderr and "integer" in refused.stderr
    unknown = mlpipe(cli_env, "run", "abalone", "--param", "MaxDepht=3")
    assert unknown.returncode == 2
    assert "MaxDepht" in unknown.stderr
    assert not (Path(cli_env["AIRFLOW__MLPIPE__ARTIFACT_STORE"]) / "objects").exists()


def test_run_prints_the_steps_and_models_approve(cli_env: dict[str, str]):
    ran = mlpipe(cli_env, "run", "abalone", "--param", "NumRound=20")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    header = next(line for line in lines if line.startswith("step"))
    assert header.split() == ["step", "status", "tries", "start", "end", "duration", "outputs", "/", "note"]
    rows = {
        line.split()[0]: line
        for line in lines
        if line.split()
        and line.split()[0] in {"Preprocess", "Train", "Evaluate", "CheckMse", "RegisterModel", "FailOnMse"}
    }
    assert set(rows) == {"Preprocess", "Train", "Evaluate", "CheckMse", "RegisterModel", "FailOnMse"}
    assert " success " in rows["Train"] and "model=directory:" in rows["Train"]
    assert " skipped " in rows["FailOnMse"]

    listed = mlpipe(cli_env, "models", "list", "abalone")
    assert listed.returncode == 0, listed.stderr
    assert "PendingManualApproval" in listed.stdout
    approved = mlpipe(cli_env, "models", "approve", "abalone", "1")
    assert approved.returncode == 0, approved.stderr
    assert "Approved" in approved.stdout
    assert "Approved" in mlpipe(cli_env, "models", "list", "abalone").stdout
    missing = mlpipe(cli_env, "models", "reject", "abalone", "99")
    assert missing.returncode == 2
    assert "99" in missing.stderr


# -- selective runs and the executions commands (local mode) ---------------------------------------
ABALONE_STEPS = ["Preprocess", "Train", "Evaluate", "CheckMse", "RegisterModel", "FailOnMse"]
DOWNSTREAM_OF_TRAIN = ["Evaluate", "CheckMse", "RegisterModel", "FailOnMse"]


def parse_table(stdout: str, first_column: str) -> dict[str, dict[str, str]]:
    """The rows of the table whose header starts with ``first_column``, by their first cell.

    Columns are cut where the dashed rule under the header has its dashes, so cells may hold spaces.
    """
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_column])
    header, rule = lines[start], lines[start + 1]
    spans = [match.span() for match in re.finditer(r"-+", rule)]
    spans[-1] = (spans[-1][0], None)  # the last cell runs to the end of the line
    names = [header[a:b].strip() for a, b in spans]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith("Execution "):
            break
        cells = {name: line[a:b].strip() for name, (a, b) in zip(names, spans, strict=True)}
        rows[cells[first_column]] = cells
    return rows


def execution_id(stdout: str) -> str:
    """The id in the last line of ``mlpipe run``: ``Execution <id>: <status>``."""
    match = re.search(r"^Execution (\S+): \w+$", stdout, flags=re.MULTILINE)
    assert match, stdout
    return match.group(1)


def abalone_run_ids(env: dict[str, str]) -> list[str]:
    """The run ids of the abalone pipeline in the command's metadata DB, read directly."""
    database = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT run_id FROM dag_run WHERE dag_id = 'abalone' ORDER BY run_id")
        return [run_id for (run_id,) in rows]


@pytest.fixture(scope="module")
def abalone_runs(cli_env: dict[str, str]) -> dict[str, subprocess.CompletedProcess[str]]:
    """A full run of abalone, then a selective run of Train with another MaxDepth (latest run as reference)."""
    full = mlpipe(cli_env, "run", "abalone")
    assert full.returncode == 0, full.stdout + full.stderr
    selective = mlpipe(cli_env, "run", "abalone", "--select", "Train", "--param", "MaxDepth=3")
    assert selective.returncode == 0, selective.stdout + selective.stderr
    return {"full": full, "selective": selective}


def test_run_select_reuses_upstream_steps_and_skips_downstream(
    abalone_runs: dict[str, subprocess.CompletedProcess[str]],
):
    full, selective = abalone_runs["full"], abalone_runs["selective"]
    full_id = execution_id(full.stdout)
    assert f"Execution {full_id}: success" in full.stdout
    full_rows = parse_table(full.stdout, "step")
    assert list(full_rows) == ["Preprocess", "Train", "Evaluate", "CheckMse", "FailOnMse", "RegisterModel"]
    assert all(full_rows[name]["tries"] == "1" for name in ABALONE_STEPS if name != "FailOnMse")

    assert "Running steps Train of 'abalone' locally" in selective.stdout
    assert '"MaxDepth": 3' in selective.stdout
    assert "  Train: success" in selective.stdout  # the progress line: only Train ran
    assert "  Preprocess:" not in selective.stdout
    rows = parse_table(selective.stdout, "step")
    assert set(rows) == set(ABALONE_STEPS)
    preprocess = rows["Preprocess"]
    assert (preprocess["status"], preprocess["tries"]) == ("success", "0")
    assert preprocess["outputs / note"].startswith(f"reused from run {full_id}; train=directory:")
    assert full_rows["Preprocess"]["outputs / note"] in preprocess["outputs / note"]  # the same outputs
    train = rows["Train"]
    assert (train["status"], train["tries"]) == ("success", "1")
    assert train["outputs / note"].startswith("model=directory:")
    assert train["outputs / note"] != full_rows["Train"]["outputs / note"]  # another max_depth, another model
    for name in DOWNSTREAM_OF_TRAIN:
        assert (rows[name]["status"], rows[name]["tries"]) == ("skipped", "0"), rows[name]
        assert rows[name]["outputs / note"] == "not selected: downstream of the selected steps"
    selective_id = execution_id(selective.stdout)
    assert selective_id != full_id
    assert f"Execution {selective_id}: success" in selective.stdout


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--select", "Trian"], ["pipeline 'abalone' has no step(s) Trian", "its steps: Preprocess, Train"]),
        (
            ["--select", "Preprocess,CheckMse"],
            ["step(s) Train, Evaluate lie between selected steps", "--include-between"],
        ),
        (["--select", "Train", "--from-run", "nope"], ["pipeline 'abalone' has no run 'nope'"]),
        (["--from-run", "X"], ["--from-run and --include-between need --select"]),
    ],
    ids=["unknown-step", "gap", "unknown-run", "from-run-without-select"],
)
def test_run_refuses_a_bad_selection_with_exit_code_2(
    cli_env: dict[str, str],
    abalone_runs: dict[str, subprocess.CompletedProcess[str]],
    options: list[str],
    fragments: list[str],
):
    before = abalone_run_ids(cli_env)
    refused = mlpipe(cli_env, "run", "abalone", *options)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("mlpipe: error:") == 1
    for fragment in fragments:
        assert fragment in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "Execution " not in refused.stdout
    assert abalone_run_ids(cli_env) == before, "a refused selection created a run"


def test_executions_list_shows_full_and_selective_runs_newest_first(
    cli_env: dict[str, str], abalone_runs: dict[str, subprocess.CompletedProcess[str]]
):
    full_id = execution_id(abalone_runs["full"].stdout)
    selective_id = execution_id(abalone_runs["selective"].stdout)
    listed = mlpipe(cli_env, "executions", "list", "abalone", "--local")
    assert listed.returncode == 0, listed.stderr
    rows = parse_table(listed.stdout, "execution")
    assert rows[full_id]["status"] == "success" and rows[full_id]["kind"] == "full"
    assert rows[selective_id]["status"] == "success" and rows[selective_id]["kind"] == "selective: Train"
    ids = list(rows)
    assert ids.index(selective_id) < ids.index(full_id)
    assert set(ids) == set(abalone_run_ids(cli_env))


def test_executions_describe_shows_the_selective_block(
    cli_env: dict[str, str], abalone_runs: dict[str, subprocess.CompletedProcess[str]]
):
    full_id = execution_id(abalone_runs["full"].stdout)
    selective_id = execution_id(abalone_runs["selective"].stdout)
    described = mlpipe(cli_env, "executions", "describe", "abalone", selective_id, "--local")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert f"execution   {selective_id}" in lines
    assert "pipeline    abalone" in lines
    assert "status      success" in lines
    assert "parameters  {'MaxDepth': 3}" in lines
    assert f"selective   Train (reused from {full_id}: Preprocess)" in lines
    assert f"note        Selective execution of Train; other steps from run {full_id}" in lines

    full = mlpipe(cli_env, "executions", "describe", "abalone", full_id, "--local")
    assert full.returncode == 0, full.stderr
    assert "parameters  {} (defaults)" in full.stdout.splitlines()
    assert "selective" not in full.stdout


def test_executions_steps_prints_the_step_table(
    cli_env: dict[str, str], abalone_runs: dict[str, subprocess.CompletedProcess[str]]
):
    selective = abalone_runs["selective"]
    selective_id = execution_id(selective.stdout)
    steps = mlpipe(cli_env, "executions", "steps", "abalone", selective_id, "--local")
    assert steps.returncode == 0, steps.stderr
    assert parse_table(steps.stdout, "step") == parse_table(selective.stdout, "step")

    missing = mlpipe(cli_env, "executions", "steps", "abalone", "nope", "--local")
    assert missing.returncode == 2
    assert "pipeline 'abalone' has no execution 'nope'" in missing.stderr


def test_definition_prints_the_same_canonical_json_each_time(cli_env: dict[str, str]):
    import json

    first = mlpipe(cli_env, "definition", "abalone_control")
    assert first.returncode == 0, first.stderr
    again = mlpipe(cli_env, "definition", str(REPO / "dags/abalone_control.pipeline.yaml"))
    assert again.returncode == 0, again.stderr
    assert first.stdout == again.stdout  # a copy of the dags folder, another path: the same text
    document = json.loads(first.stdout)
    steps = {item["name"]: item for item in document["steps"]}
    assert steps["Retrain"]["dependencies"] == ["Retrain.1.until", "Retrain.2.until", "Retrain.3.until"]
    assert steps["Tune"]["kind"] == "tuning" and steps["Tune"]["digest"].startswith("sha256:")


def test_executions_list_filters_by_status_and_since(
    cli_env: dict[str, str], abalone_runs: dict[str, subprocess.CompletedProcess[str]]
):
    failed = mlpipe(cli_env, "executions", "list", "abalone", "--local", "--status", "failed")
    assert failed.returncode == 0, failed.stderr
    assert parse_table(failed.stdout, "execution") == {}
    recent = mlpipe(
        cli_env, "executions", "list", "abalone", "--local", "--status", "success", "--since", "1d"
    )
    assert set(parse_table(recent.stdout, "execution")) == set(abalone_run_ids(cli_env))
    wrong = mlpipe(cli_env, "executions", "list", "abalone", "--local", "--status", "done")
    assert wrong.returncode != 0 and "unknown execution status 'done'" in wrong.stderr
