"""Local mode writes each task's log where Airflow keeps it, in the shape Airflow reads, and keeps
Airflow's own logs off the console unless asked.

The first tests also guard the Airflow internals ``local_logs`` uses (the log path template renderer,
the supervisor's file processors, the log reader): an Airflow upgrade that changes them fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.model import FunctionStep, Pipeline
from tests.operators import step_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def failed_execution():
    """A local run: Echo succeeds (and logs through stdlib logging), Boom fails."""
    echo = FunctionStep("Echo", function=fns.log_and_echo, arguments={"value": 7})
    boom = FunctionStep("Boom", function=fns.raise_value_error, arguments={"size": 3}, depends_on=[echo])
    execution = Pipeline("logs_local", [], [echo, boom]).start(session=LocalSession())
    assert execution.describe().status == "failed"
    return execution


def log_file(run_id: str, task_id: str, attempt: int = 1) -> Path:
    from airflow.configuration import conf

    base = Path(conf.get("logging", "base_log_folder"))
    return base / "dag_id=logs_local" / f"run_id={run_id}" / f"task_id={task_id}" / f"attempt={attempt}.log"


def test_each_try_is_logged_under_airflow_home_as_structlog_json_lines(airflow_home: Path, failed_execution):
    path = log_file(failed_execution.execution_id, "Echo")
    assert path.is_relative_to(airflow_home / "logs")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines, path
    for line in lines:
        assert {"timestamp", "level", "event", "logger"} <= set(line), line
        assert list(line)[:3] == ["timestamp", "level", "event"]  # Airflow's order
    events = {(line["level"], line["logger"], line["event"]) for line in lines}
    # The user's own stdlib logging and the operator's structlog lines, in one file.
    assert ("info", "tests.operators.step_functions", "echoing 7") in events
    assert any(
        logger.endswith("MlpipeFunctionOperator") and "Step Echo (function) done" in event
        for _, logger, event in events
    )
    # Nothing of the other task, nor of the in-process API server.
    assert not any("Boom" in event for _, _, event in events)
    assert not any(logger.startswith("airflow.api_fastapi") for _, logger, _ in events)


def test_a_failed_try_logs_its_reason_and_traceback(failed_execution):
    lines = [
        json.loads(line) for line in log_file(failed_execution.execution_id, "Boom").read_text().splitlines()
    ]
    errors = [line for line in lines if line["level"] == "error"]
    assert (
        errors[0]["event"]
        == "Step Boom failed on try 1: ValueError: start of a long message xxx end of a long message"
    )
    traceback = next(line for line in errors if "exception" in line)
    assert traceback["exception"][0]["exc_type"] == "ValueError"


def test_airflows_log_reader_reads_the_local_task_log(failed_execution):
    """What the Airflow UI shows for the task: read with Airflow's own reader from the same path."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.log_reader import TaskLogReader
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.run_id == failed_execution.execution_id, TaskInstance.task_id == "Boom"
            )
        )
        stream, _ = TaskLogReader().read_log_chunks(ti, 1, {})
        events = [getattr(message, "event", "") for message in stream]
    assert (
        "Step Boom failed on try 1: ValueError: start of a long message xxx end of a long message" in events
    )
    assert str(log_file(failed_execution.execution_id, "Boom")) in " ".join(events)  # the source it read


QUIET_SCRIPT = textwrap.dedent(
    """
    import sys
    from airflow_provider_mlpipe import FunctionStep, LocalSession, Pipeline

    verbose = sys.argv[1] == "verbose"
    step = FunctionStep("Echo", function="tests.operators.step_functions:log_and_echo", arguments={"value": 3})
    execution = Pipeline("logs_console", [], [step]).start(session=LocalSession(verbose=verbose))
    print("STATUS", execution.describe().status)
    """
)


def start_in_a_new_process(airflow_home: Path, mode: str) -> subprocess.CompletedProcess[str]:
    # A plain process: not under pytest (Airflow caches loggers differently there).
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-c", QUIET_SCRIPT, mode],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pipeline_start_in_local_mode_keeps_airflows_logs_off_the_console_unless_verbose(airflow_home: Path):
    quiet = start_in_a_new_process(airflow_home, "quiet")
    assert quiet.returncode == 0, quiet.stderr
    output = quiet.stdout + quiet.stderr
    assert "STATUS success" in quiet.stdout
    for chatter in ("[DAG TEST]", "Task started", "echoing 3", "Step Echo (function) done", "[info"):
        assert chatter not in output, output

    verbose = start_in_a_new_process(airflow_home, "verbose")
    assert verbose.returncode == 0, verbose.stderr
    output = verbose.stdout + verbose.stderr
    assert "STATUS success" in verbose.stdout
    for chatter in ("[DAG TEST]", "echoing 3", "Step Echo (function) done"):
        assert chatter in output, output
