"""The mlpipe command, run as a real subprocess with its own AIRFLOW_HOME."""

from __future__ import annotations

import os
import shutil
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
    assert header.split() == ["step", "status", "start", "end", "duration", "outputs"]
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
