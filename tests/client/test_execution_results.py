"""Reading an execution's results back in local mode: ``step_outputs``, ``result``, ``Pipeline.from_yaml``
(with a function beside the spec, imported as a worker would), internal tasks kept out of the steps,
``stop`` and an unknown pipeline."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from airflow_provider_mlpipe.client.executions import StepExecution, execution_failure_reason
from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.dagruns import MAX_NOTE_CHARS, failure_note
from airflow_provider_mlpipe.exceptions import (
    ArtifactError,
    ExecutionNotFoundError,
    PipelineNotFoundError,
    StepOutputError,
)
from airflow_provider_mlpipe.model import FunctionStep, ParameterInteger, Pipeline
from tests.client import pipeline_functions as fns
from tests.operators import step_functions as step_fns

pytestmark = pytest.mark.usefixtures("airflow_home")


def test_step_outputs_and_result_read_values_back_from_the_artifact_store(tmp_path: Path):
    rows = ParameterInteger("Rows", default_value=3)
    load = FunctionStep("Load", function=fns.load, arguments={"rows": rows})
    split = FunctionStep(
        "Split", function=step_fns.split, arguments={"values": load.output("result")}, outputs=["even", "odd"]
    )
    frame = FunctionStep("Frame", function=step_fns.make_frame, arguments={"rows": rows})
    opaque = FunctionStep("Opaque", function=step_fns.make_opaque, arguments={"value": 5})
    pipeline = Pipeline("results_values", [rows], [load, split, frame, opaque])
    execution = pipeline.start({"Rows": 5}, session=LocalSession())

    outputs = execution.step_outputs("Split")
    assert list(outputs) == ["even", "odd"] and len(outputs) == 2 and "even" in outputs
    assert outputs["even"] == [0, 2, 4] and outputs["odd"] == [1, 3]
    with pytest.raises(KeyError, match="has no output 'evens'"):
        outputs["evens"]
    # One output: result() is the value; several: the outputs by name.
    assert execution.result("Load") == [0, 1, 2, 3, 4]
    assert dict(execution.result("Split")) == {"even": [0, 2, 4], "odd": [1, 3]}
    assert list(execution.result("Frame")["y"]) == [0.0, 2.0, 4.0, 6.0, 8.0]  # a DataFrame again
    # A pickle is only loaded when asked for.
    with pytest.raises(ArtifactError, match="allow_pickle"):
        execution.result("Opaque")
    assert execution.result("Opaque", allow_pickle=True).value == 5
    # The same from an execution found again by id.
    assert pipeline.execution(execution.execution_id, session=LocalSession()).result("Load") == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_step_outputs_of_a_step_that_did_not_succeed_say_why():
    scale = ParameterInteger("Scale", default_value=-1)
    load = FunctionStep("Load", function=fns.load, arguments={"rows": 2})
    transform = FunctionStep(
        "Transform", function=fns.transform, arguments={"values": load.output("result"), "scale": scale}
    )
    total = FunctionStep("Total", function=fns.total, arguments={"values": transform.output("result")})
    execution = Pipeline("results_failed", [scale], [load, transform, total]).start(session=LocalSession())

    with pytest.raises(
        StepOutputError,
        match=r"'Transform' .* is failed, .* It failed: ValueError: scale must not be negative",
    ):
        execution.step_outputs("Transform")
    with pytest.raises(
        StepOutputError, match=r"'Total' .* is upstream_failed, and only a step that succeeded has outputs$"
    ):
        execution.result("Total")
    with pytest.raises(ExecutionNotFoundError, match="has no step 'Nope'"):
        execution.step_outputs("Nope")
    # describe() says why the execution failed; a listing leaves that out (it takes each run's steps).
    assert execution.describe().failure_reason == (
        "step Transform failed: ValueError: scale must not be negative, got -1"
    )
    (listed,) = LocalSession().list_executions("results_failed")
    assert (listed.status, listed.failure_reason) == ("failed", None)


def write_spec_with_a_function_beside_it(folder: Path) -> tuple[Path, str]:
    """A spec whose ``function: module:name`` lives in a module next to it (a unique name per test)."""
    module = f"helpers_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text("def triple(value):\n    return value * 3\n")
    spec = folder / "beside.pipeline.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            name: results_from_yaml_{module}
            parameters:
              - {{name: Value, type: Integer, default: 4}}
            steps:
              - {{name: Triple, type: function, function: "{module}:triple", arguments: {{value: {{param: Value}}}}}}
            """
        )
    )
    return spec, module


def test_from_yaml_runs_a_function_that_lives_beside_the_spec(tmp_path: Path):
    spec, module = write_spec_with_a_function_beside_it(tmp_path)

    pipeline = Pipeline.from_yaml(spec)
    assert isinstance(pipeline, Pipeline) and list(pipeline.steps) == ["Triple"]
    assert pipeline.base_dir == tmp_path
    execution = pipeline.start({"Value": 5}, session=LocalSession())

    assert execution.describe().status == "success", execution.list_steps()
    assert execution.result("Triple") == 15


def test_internal_tasks_are_not_steps():
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    load = FunctionStep("Load", function=fns.load, arguments={"rows": 2})
    pipeline = Pipeline("results_internal", [], [load])
    dag = build_dag(pipeline)  # the factory adds the internal outcome task itself
    assert "_pipeline_outcome" in dag.task_dict
    result = run_dag_locally(dag)
    assert result.state == "success"
    assert {task.task_id for task in result.tasks} == {"Load"}

    steps = LocalSession().list_steps(pipeline.name, result.run_id)
    assert [step.step_name for step in steps] == ["Load"]


def test_stop_fails_a_running_execution_and_leaves_a_finished_one_alone():
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import create_run
    from airflow_provider_mlpipe.local_runs import forget_driver

    load = FunctionStep("Load", function=fns.load, arguments={"rows": 2})
    total = FunctionStep("Total", function=fns.total, arguments={"values": load.output("result")})
    pipeline = Pipeline("results_stop", [], [load, total])
    session = LocalSession()
    finished = pipeline.start(session=session)
    # A run that is running (created, not driven), as one driven by `mlpipe run` in another terminal.
    running = pipeline.execution(create_run(build_dag(pipeline)), session=session)
    assert running.describe().status == "running"

    running.stop()
    finished.stop()

    description = running.describe()
    assert description.status == "failed"
    assert description.note == "Stopped on request."
    assert description.failure_reason == "Stopped on request."
    assert {step.status for step in running.list_steps()} == {"skipped"}
    assert finished.describe().status == "success"
    forget_driver(pipeline.name, running.execution_id)  # no process drives it here


def test_an_unknown_pipeline_has_no_executions_to_list_but_a_known_one_lists_none():
    with pytest.raises(PipelineNotFoundError, match="no pipeline named 'results_never_defined'"):
        LocalSession().list_executions("results_never_defined")
    never_ran = Pipeline(
        "results_never_ran", [], [FunctionStep("Load", function=fns.load, arguments={"rows": 1})]
    )
    assert never_ran.list_executions(session=LocalSession()) == []


# -- why an execution failed, from its steps and note ----------------------------------------------
def step(name: str, status: str, reason: str | None = None) -> StepExecution:
    return StepExecution(name, status, None, None, 1, failure_reason=reason)


@pytest.mark.parametrize(
    ("status", "note", "steps", "expected"),
    [
        ("success", None, [step("A", "success")], None),
        ("running", None, [step("A", "failed", "x")], None),
        (
            "failed",
            "first try",
            [step("A", "success"), step("B", "failed", "exit 3"), step("C", "upstream_failed")],
            "step B failed: exit 3",
        ),
        (
            "failed",
            None,
            [step("A", "failed", "one"), step("B", "failed", "two\nlines")],
            "step A failed: one\nstep B failed: two\nlines",
        ),
        ("failed", "Selective execution refused: no run", [], "Selective execution refused: no run"),
        (
            "failed",
            None,
            [step("A", "failed")],
            "step(s) A failed with no reason recorded by the step: its task process ended before it "
            "could give one (a lost or killed worker, a task timeout, or an error before the step "
            "started); see the task log",
        ),
        ("failed", None, [step("A", "success")], "the execution was marked failed, and no step failed"),
    ],
)
def test_execution_failure_reason(status, note, steps, expected):
    assert execution_failure_reason(status, note, steps) == expected


def test_a_failure_note_fits_airflows_note_column_and_keeps_the_last_lines():
    reason = "script exited with code 1; its last output lines:\n" + "\n".join(
        f"line {n}" * 20 for n in range(40)
    )
    note = failure_note({"reason": reason, "try_number": 3})
    assert note is not None and len(note) <= MAX_NOTE_CHARS
    assert note.startswith("Failed on try 3: script exited with code 1; its last output lines:\n```\n")
    assert note.endswith("line 39" * 20 + "\n```")
    assert failure_note({"try_number": 1}) is None and failure_note("not a dict") is None
