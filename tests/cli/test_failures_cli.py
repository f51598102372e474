"""The mlpipe command when things go wrong, run as real subprocesses with their own AIRFLOW_HOME: a failed
step's reason, a killed ``mlpipe run``, ``executions stop``, an unknown pipeline, a closed pipe, and
a function beside the spec run from another folder."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.cli.test_main import MLPIPE, execution_id, parse_table

DEADLINE_S = 300  # a guard against a hung test, not a timing assertion

SPECS = {
    # A -> B -> C, each a function in the module beside the spec.
    "counting.pipeline.yaml": """
        name: counting
        steps:
          - {name: A, type: function, function: "countfns:first"}
          - {name: B, type: function, function: "countfns:plus_one", arguments: {value: {step: A, output: result}}}
          - {name: C, type: function, function: "countfns:plus_one", arguments: {value: {step: B, output: result}}}
        """,
    "crash.pipeline.yaml": """
        name: crash
        steps:
          - name: Process
            type: processing
            code: crash.py
            retry: {max_attempts: 2, interval_seconds: 0}
          - {name: After, type: fail, error_message: never reached, depends_on: [Process]}
        """,
    "hang.pipeline.yaml": """
        name: hang
        parameters:
          - {name: Started, type: String}
          - {name: Release, type: String}
        steps:
          - name: Wait
            type: function
            function: "countfns:wait_for"
            arguments: {started: {param: Started}, release: {param: Release}}
          - {name: Later, type: function, function: "countfns:plus_one", arguments: {value: 1}, depends_on: [Wait]}
        """,
}
COUNTFNS = """
    import time
    from pathlib import Path

    def first():
        return 1

    def plus_one(value):
        return value + 1

    def wait_for(started, release):
        Path(started).write_text("started")
        while not Path(release).exists():
            time.sleep(0.2)
        return "released"
    """
CRASH = """
    import os, sys
    for number in range(1, 31):
        print(f"progress line {number}")
    print(f"try {os.environ['AIRFLOW_CTX_TRY_NUMBER']} gives up: disk full", file=sys.stderr)
    sys.exit(3)
    """


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("cli-failures-home")
    dags = home / "dags"
    dags.mkdir()
    for name, text in {**SPECS, "countfns.py": COUNTFNS, "crash.py": CRASH}.items():
        (dags / name).write_text(textwrap.dedent(text).lstrip())
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    environment.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__MLPIPE__ARTIFACT_STORE=str(home / "artifacts"),
    )
    return environment


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working folder that is neither the repository nor the dags folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def mlpipe(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLPIPE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def start_mlpipe(env: dict[str, str], *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MLPIPE, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_file(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"mlpipe ended early: {process.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_run_from_another_folder_imports_a_function_beside_the_spec(env: dict[str, str], elsewhere: Path):
    ran = mlpipe(env, "run", "counting", cwd=elsewhere)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = parse_table(ran.stdout, "step")
    assert [rows[name]["status"] for name in "ABC"] == ["success"] * 3


def test_include_between_prints_the_steps_it_added(env: dict[str, str], elsewhere: Path):
    full = mlpipe(env, "run", "counting", cwd=elsewhere)
    assert full.returncode == 0, full.stdout + full.stderr
    selective = mlpipe(env, "run", "counting", "--select", "A,C", "--include-between", cwd=elsewhere)
    assert selective.returncode == 0, selective.stdout + selective.stderr
    assert "--include-between added the steps between the selected ones: B" in selective.stdout.splitlines()
    rows = parse_table(selective.stdout, "step")
    assert [rows[name]["tries"] for name in "ABC"] == ["1", "1", "1"]


def test_run_shows_why_a_step_failed_and_so_do_describe_and_steps(env: dict[str, str], elsewhere: Path):
    ran = mlpipe(env, "run", "crash", cwd=elsewhere)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    for noise in ("Traceback", "[info", "[warning", "[error"):  # the task's logs are in its log file
        assert noise not in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    rows = parse_table(ran.stdout, "step")
    assert (rows["Process"]["status"], rows["Process"]["tries"]) == ("failed", "2")
    assert rows["Process"]["outputs / note"] == "try 2 gives up: disk full"
    assert rows["After"]["status"] == "upstream_failed"
    lines = ran.stdout.splitlines()
    details = lines.index("Step Process failed (try 2):")
    assert lines[details + 1].endswith("crash.py exited with code 3; its last output lines:")
    assert lines[details + 2 : details + 22] == [f"    progress line {n}" for n in range(12, 31)] + [
        "    try 2 gives up: disk full"
    ]
    run_id = execution_id(ran.stdout)

    described = mlpipe(env, "executions", "describe", "crash", run_id, "--local")
    assert described.returncode == 0, described.stderr
    failure = next(line for line in described.stdout.splitlines() if line.startswith("failure "))
    assert failure.startswith("failure     step Process failed: ") and failure.endswith(
        "its last output lines:"
    )
    assert "            try 2 gives up: disk full" in described.stdout.splitlines()

    steps = mlpipe(env, "executions", "steps", "crash", run_id, "--local")
    assert steps.returncode == 0, steps.stderr
    assert parse_table(steps.stdout, "step") == rows
    assert "    try 2 gives up: disk full" in steps.stdout.splitlines()


def test_executions_list_of_an_unknown_pipeline_is_an_error(env: dict[str, str]):
    unknown = mlpipe(env, "executions", "list", "nosuch", "--local")
    assert unknown.returncode == 2
    assert "mlpipe: error: no pipeline named 'nosuch'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    # A pipeline of the dags folder that never ran: no executions, no error.
    never = mlpipe(env, "executions", "list", "hang", "--local")
    assert never.returncode == 0, never.stderr
    assert parse_table(never.stdout, "execution") == {}


def test_a_closed_pipe_ends_the_command_without_a_traceback(env: dict[str, str]):
    # `mlpipe executions list counting | head -0`: the reader is gone before anything is written.
    process = subprocess.Popen(
        [*MLPIPE, "executions", "list", "counting", "--local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=600) == 128 + signal.SIGPIPE
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def running_execution(env: dict[str, str], pipeline: str) -> str:
    listed = mlpipe(env, "executions", "list", pipeline, "--local")
    assert listed.returncode == 0, listed.stderr
    running = [
        run for run, row in parse_table(listed.stdout, "execution").items() if row["status"] == "running"
    ]
    assert len(running) == 1, listed.stdout
    return running[0]


def test_a_killed_run_is_marked_failed_by_the_next_command(
    env: dict[str, str], tmp_path: Path, elsewhere: Path
):
    started, release = tmp_path / "started", tmp_path / "release"
    process = start_mlpipe(
        env,
        "run",
        "hang",
        "-p",
        f"Started={started}",
        "-p",
        f"Release={release}",
        cwd=elsewhere,
    )
    wait_for_file(started, process)
    run_id = running_execution(env, "hang")
    records = list((Path(env["AIRFLOW_HOME"]) / "mlpipe" / "local-runs").glob("*.json"))
    assert len(records) == 1 and run_id in records[0].read_text()

    process.send_signal(signal.SIGKILL)
    process.communicate()

    described = mlpipe(env, "executions", "describe", "hang", run_id, "--local")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert "status      failed" in lines
    note = f"Failed: the process that ran it (pid {process.pid} on {os.uname().nodename}) ended before the run finished."
    assert f"note        {note}" in lines
    steps = parse_table(mlpipe(env, "executions", "steps", "hang", run_id, "--local").stdout, "step")
    assert steps["Wait"]["status"] == "failed"
    assert steps["Wait"]["outputs / note"] == (
        f"the process running this step (pid {process.pid} on {os.uname().nodename}) ended before it finished"
    )
    assert steps["Later"]["status"] == "skipped"
    assert not list(records[0].parent.glob("*.json"))


def test_executions_stop_fails_a_running_run_and_leaves_a_finished_one(
    env: dict[str, str], tmp_path: Path, elsewhere: Path
):
    started, release = tmp_path / "started", tmp_path / "release"
    process = start_mlpipe(
        env,
        "run",
        "hang",
        "-p",
        f"Started={started}",
        "-p",
        f"Release={release}",
        cwd=elsewhere,
    )
    wait_for_file(started, process)
    run_id = running_execution(env, "hang")

    stopped = mlpipe(env, "executions", "stop", "hang", run_id, "--local")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"Stopped execution {run_id} of 'hang': failed"
    release.write_text("go")  # the step that was running finishes; the run stops after it
    stdout, stderr = process.communicate(timeout=DEADLINE_S)

    assert process.returncode == 1, stdout + stderr
    rows = parse_table(stdout, "step")
    assert (rows["Wait"]["status"], rows["Later"]["status"]) == ("success", "skipped")
    assert "Failed: Stopped on request." in stdout.splitlines()
    assert f"Execution {run_id}: failed" in stdout
    again = mlpipe(env, "executions", "stop", "hang", run_id, "--local")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"Execution {run_id} of 'hang' already finished (failed); not stopped"
