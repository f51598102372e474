"""A failed step keeps its reason: the script's last output lines, the exception, the Fail step's
message. Run for real in local mode; the reason shows in ``list_steps()``, ``describe()``, the task
instance's note and the task log of each try."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.dagruns import FAILURE_KEY, MAX_NOTE_CHARS
from airflow_provider_mlpipe.model import (
    FailStep,
    FunctionStep,
    Join,
    ParameterFloat,
    Pipeline,
    ProcessingStep,
    RetryPolicy,
)
from airflow_provider_mlpipe.operators.failures import MAX_REASON_CHARS, SCRIPT_TAIL_CHARS
from tests.operators import step_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")

# Prints 30 numbered lines, then says on stderr which try it is, and exits 3.
CRASHING_SCRIPT = textwrap.dedent(
    """
    import os, sys
    for number in range(1, 31):
        print(f"progress line {number}")
    print(f"try {os.environ['AIRFLOW_CTX_TRY_NUMBER']} gives up: disk full", file=sys.stderr)
    sys.exit(3)
    """
)


def steps_by_name(execution):
    return {step.step_name: step for step in execution.list_steps()}


def task_log(pipeline: str, run_id: str, step: str, attempt: int) -> list[dict]:
    """The JSON lines of a task's log file, where Airflow keeps it."""
    from airflow.configuration import conf

    folder = Path(conf.get("logging", "base_log_folder"))
    path = folder / f"dag_id={pipeline}" / f"run_id={run_id}" / f"task_id={step}" / f"attempt={attempt}.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def failure_xcom(pipeline: str, run_id: str, step: str):
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.dagruns import read_step_records

    with create_session() as session:
        return read_step_records(pipeline, run_id, session=session, key=FAILURE_KEY).get(step)


def test_a_failed_script_keeps_its_last_output_lines_for_each_try(tmp_path: Path):
    (tmp_path / "crash.py").write_text(CRASHING_SCRIPT)
    step = ProcessingStep(
        "Crash", code="crash.py", retry_policy=RetryPolicy(max_attempts=2, interval_seconds=0)
    )
    pipeline = Pipeline("fails_script", [], [step], base_dir=tmp_path)

    execution = pipeline.start(session=LocalSession())

    crash = steps_by_name(execution)["Crash"]
    assert (crash.status, crash.attempts) == ("failed", 2)
    reason = crash.failure_reason
    assert reason is not None
    first_line, *tail = reason.splitlines()
    assert first_line.endswith("crash.py exited with code 3; its last output lines:")
    # The last 20 lines: progress lines 12..30, then the script's own error, of the last try.
    assert tail == [f"progress line {number}" for number in range(12, 31)] + ["try 2 gives up: disk full"]
    assert failure_xcom(pipeline.name, execution.execution_id, "Crash") == {"reason": reason, "try_number": 2}
    # The task instance's note, for the Airflow UI: the try, the command, its last lines in a code block.
    assert crash.note is not None and crash.note.startswith("Failed on try 2: ")
    assert crash.note.endswith("progress line 30\ntry 2 gives up: disk full\n```")
    described = execution.describe()
    assert described.status == "failed"
    assert described.failure_reason == f"step Crash failed: {reason}"
    # Each try's log has its own reason as an ERROR line.
    for attempt in (1, 2):
        errors = [
            line["event"]
            for line in task_log(pipeline.name, execution.execution_id, "Crash", attempt)
            if line["level"] == "error"
        ]
        assert f"Step Crash failed on try {attempt}: " in errors[0]
        assert errors[0].endswith(f"try {attempt} gives up: disk full")


def test_a_script_tail_is_bounded_in_characters_too(tmp_path: Path):
    (tmp_path / "wide.py").write_text(
        "import sys\nfor n in range(5):\n    print(str(n) * 3000)\nsys.exit(1)\n"
    )
    pipeline = Pipeline("fails_wide", [], [ProcessingStep("Wide", code="wide.py")], base_dir=tmp_path)

    reason = steps_by_name(pipeline.start(session=LocalSession()))["Wide"].failure_reason

    assert reason is not None
    header, *tail = reason.splitlines()
    assert "exited with code 1" in header
    assert tail == ["4" * 3000]  # the last line fits; the one before it would pass SCRIPT_TAIL_CHARS
    assert sum(len(line) + 1 for line in tail) <= SCRIPT_TAIL_CHARS


def test_a_silent_script_says_it_printed_nothing(tmp_path: Path):
    (tmp_path / "mute.py").write_text("import sys\nsys.exit(2)\n")
    pipeline = Pipeline("fails_silent", [], [ProcessingStep("Mute", code="mute.py")], base_dir=tmp_path)

    reason = steps_by_name(pipeline.start(session=LocalSession()))["Mute"].failure_reason

    assert reason is not None and reason.endswith("mute.py exited with code 2 (it printed nothing)")


def test_a_fail_step_keeps_its_message():
    threshold = ParameterFloat("Threshold", default_value=6.0)
    fail = FailStep("FailOnMse", error_message=Join(on=" ", values=["MSE above", threshold]))
    pipeline = Pipeline("fails_fail_step", [threshold], [fail])

    execution = pipeline.start({"Threshold": 2.5}, session=LocalSession())

    step = steps_by_name(execution)["FailOnMse"]
    assert (step.status, step.failure_reason, step.note) == (
        "failed",
        "MSE above 2.5",
        "Failed on try 1: MSE above 2.5",
    )
    assert execution.describe().failure_reason == "step FailOnMse failed: MSE above 2.5"


def test_a_raising_function_keeps_the_exception_and_downstream_steps_have_no_reason():
    load = FunctionStep("Load", function=fns.echo, arguments={"value": [1, 2]})
    boom = FunctionStep("Boom", function="tests.operators.step_functions:no_such_function")
    after = FunctionStep("After", function=fns.echo, arguments={"value": boom.output("result")})
    pipeline = Pipeline("fails_function", [], [load, boom, after])

    execution = pipeline.start(session=LocalSession())

    steps = steps_by_name(execution)
    assert steps["Load"].failure_reason is None
    assert steps["Boom"].failure_reason == (
        "step 'Boom': cannot import function 'tests.operators.step_functions:no_such_function': "
        "module 'tests.operators.step_functions' has no attribute 'no_such_function'"
    )
    assert (steps["After"].status, steps["After"].failure_reason, steps["After"].note) == (
        "upstream_failed",
        None,
        None,
    )


def test_a_python_exception_is_named_by_its_type_and_a_huge_message_is_bounded():
    step = FunctionStep("Huge", function=fns.raise_value_error, arguments={"size": 20_000})
    execution = Pipeline("fails_huge", [], [step]).start(session=LocalSession())

    huge = steps_by_name(execution)["Huge"]
    assert huge.failure_reason is not None
    assert huge.failure_reason.startswith("ValueError: start of a long message xxx")
    assert huge.failure_reason.endswith("xxx end of a long message")
    assert len(huge.failure_reason) <= MAX_REASON_CHARS
    assert huge.note is not None and len(huge.note) <= MAX_NOTE_CHARS


def test_a_try_that_succeeds_after_a_failed_one_has_no_failure_reason(tmp_path: Path):
    step = FunctionStep(
        "Flaky",
        function=fns.fail_once,
        arguments={"marker": str(tmp_path / "marker")},
        retry_policy=RetryPolicy(max_attempts=2, interval_seconds=0),
    )
    execution = Pipeline("flaky_then_fine", [], [step]).start(session=LocalSession())

    flaky = steps_by_name(execution)["Flaky"]
    assert (flaky.status, flaky.attempts, flaky.failure_reason, flaky.note) == ("success", 2, None, None)
    assert execution.describe().failure_reason is None
    errors = [
        line
        for line in task_log("flaky_then_fine", execution.execution_id, "Flaky", 1)
        if line["level"] == "error"
    ]
    assert errors[0]["event"] == "Step Flaky failed on try 1: RuntimeError: first attempt fails on purpose"


def test_a_users_note_on_a_failed_step_is_kept():
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mlpipe.dagruns import note_failed_steps

    execution = Pipeline("fails_noted", [], [FailStep("Stop", error_message="stop here")]).start(
        session=LocalSession()
    )

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == execution.execution_id))
        (ti,) = [ti for ti in run.get_task_instances(session=session) if ti.task_id == "Stop"]
        ti.note = "looking into it"
        session.flush()
        assert note_failed_steps(run, session=session) == []
    step = steps_by_name(execution)["Stop"]
    assert (step.note, step.failure_reason) == ("looking into it", "stop here")
