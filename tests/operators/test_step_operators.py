"""Each step kind run for real through Airflow (``dag.test`` on the test SQLite DB)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.model import (
    ConditionAnd,
    ConditionGreaterThan,
    ConditionIn,
    ConditionLessThan,
    ConditionNot,
    ConditionStep,
    FailStep,
    FunctionStep,
    Join,
    JsonGet,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    RetryPolicy,
    TrainingStep,
)
from tests.operators import step_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")


def run(pipeline: Pipeline, conf: dict | None = None):
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    return run_dag_locally(build_dag(pipeline), conf=conf)


def load_output(result, step: str, output: str, *, allow_pickle: bool = False):
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value
    from airflow_provider_mlpipe.settings import artifact_store_for

    record = result.task(step).return_value
    ref = ArtifactRef.from_dict(record["outputs"][output])
    return load_value(artifact_store_for(), ref, allow_pickle=allow_pickle)


def test_function_steps_pass_frames_arrays_and_json_through_the_store():
    rows = ParameterInteger("Rows", default_value=4)
    frame = FunctionStep("MakeFrame", function=fns.make_frame, arguments={"rows": rows})
    summary = FunctionStep(
        "Summarise", function=fns.summarise, arguments={"frame": frame.output("result"), "factor": rows * 2}
    )
    array = FunctionStep("MakeArray", function=fns.make_array, arguments={"size": 6})
    total = FunctionStep("ArraySum", function=fns.array_sum, arguments={"array": array.output("result")})
    halves = FunctionStep(
        "Split",
        function="tests.operators.step_functions:split",
        arguments={"values": [1, 2, 3, 4, 5]},
        outputs=["even", "odd"],
    )
    result = run(Pipeline("fn_values", [rows], [frame, summary, array, total, halves]), conf={"Rows": 5})

    assert result.state == "success"
    record = result.task("MakeFrame").return_value
    assert record["outputs"]["result"]["type"] == "pandas"
    assert record["outputs"]["result"]["digest"].startswith("sha256:")
    # 5 rows of y = 2x, summed (20.0) times factor Rows * 2 = 10
    assert load_output(result, "Summarise", "result") == {"rows": 5, "total": 200.0}
    assert result.task("MakeArray").return_value["outputs"]["result"]["type"] == "numpy"
    assert load_output(result, "ArraySum", "result") == 15.0
    assert load_output(result, "Split", "even") == [2, 4]
    assert load_output(result, "Split", "odd") == [1, 3, 5]


def test_pickled_values_are_only_loaded_by_steps_that_allow_it():
    make = FunctionStep("Make", function=fns.make_opaque, arguments={"value": 7})
    refuse = FunctionStep("Refuse", function=fns.read_opaque, arguments={"thing": make.output("result")})
    failed = run(Pipeline("pickle_refused", [], [make, refuse]))
    assert failed.state == "failed"
    assert failed.task("Make").state == "success"
    assert failed.task("Make").return_value["outputs"]["result"]["type"] == "pickle"
    assert failed.task("Refuse").state == "failed"

    make = FunctionStep("Make", function=fns.make_opaque, arguments={"value": 7})
    allow = FunctionStep(
        "Allow", function=fns.read_opaque, arguments={"thing": make.output("result")}, allow_pickle=True
    )
    allowed = run(Pipeline("pickle_allowed", [], [make, allow]))
    assert allowed.state == "success"
    assert load_output(allowed, "Allow", "result") == 7


def test_processing_step_gets_inputs_arguments_env_and_collects_outputs(tmp_path: Path):
    data = tmp_path / "raw.txt"
    data.write_text("1 2 3 4\n")
    script = tmp_path / "count.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, pathlib, sys
            raw = pathlib.Path(os.environ["MLPIPE_INPUT_RAW"]) / "raw.txt"
            numbers = [int(v) for v in raw.read_text().split()]
            out = pathlib.Path(os.environ["MLPIPE_OUTPUT_REPORT"])
            scale = int(sys.argv[sys.argv.index("--scale") + 1])
            (out / "report.json").write_text(json.dumps({"sum": sum(numbers) * scale, "label": os.environ["LABEL"]}))
            (out / "nested").mkdir()
            (out / "nested" / "copy.txt").write_text(raw.read_text())
            print("counted", len(numbers))
            """
        )
    )
    scale = ParameterInteger("Scale", default_value=1)
    label = ParameterString("Label", default_value="plain")
    report = PropertyFile("Report", output_name="report", path="report.json")
    count = ProcessingStep(
        "Count",
        code="count.py",
        inputs=[ProcessingInput("raw", source=str(data))],
        outputs=[ProcessingOutput("report")],
        job_arguments=["--scale", scale],
        env={"LABEL": Join(on="-", values=[label, scale])},
        property_files=[report],
    )
    doubled = FunctionStep(
        "Double", function=fns.echo, arguments={"value": JsonGet(count, report, "sum") * 2}
    )
    pipeline = Pipeline("processing", [scale, label], [count, doubled], base_dir=tmp_path)
    result = run(pipeline, conf={"Scale": 3, "Label": "x"})

    assert result.state == "success", result
    directory = load_output(result, "Count", "report")
    assert json.loads((Path(directory) / "report.json").read_text()) == {"sum": 30, "label": "x-3"}
    assert (Path(directory) / "nested" / "copy.txt").read_text() == "1 2 3 4\n"
    assert load_output(result, "Double", "result") == 60


def test_processing_step_failure_fails_the_task(tmp_path: Path):
    (tmp_path / "boom.py").write_text("import sys\nprint('about to fail')\nsys.exit(3)\n")
    step = ProcessingStep("Boom", code="boom.py")
    result = run(Pipeline("processing_fails", [], [step], base_dir=tmp_path))
    assert result.state == "failed"
    assert result.task("Boom").state == "failed"


def test_training_step_script_mode_and_callable(tmp_path: Path):
    channel = tmp_path / "numbers"
    channel.mkdir()
    (channel / "a.txt").write_text("2 4 6")
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse, json, os, pathlib
            parser = argparse.ArgumentParser()
            parser.add_argument("--scale", type=float)
            args = parser.parse_args()
            assert json.loads(os.environ["SM_HPS"])["scale"] == args.scale
            numbers = [float(v) for p in pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]).rglob("*.txt")
                       for v in p.read_text().split()]
            mean = sum(numbers) / len(numbers) * args.scale
            pathlib.Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"mean": mean}))
            pathlib.Path(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json").write_text(json.dumps({"mean": mean}))
            """
        )
    )
    scale = ParameterFloat("Scale", default_value=1.0)
    by_script = TrainingStep(
        "TrainScript", code="train.py", hyperparameters={"scale": scale}, inputs={"train": str(channel)}
    )
    by_callable = TrainingStep(
        "TrainCallable",
        function=fns.train_mean,
        hyperparameters={"scale": scale * 10},
        inputs={"train": str(channel)},
    )
    result = run(
        Pipeline("training", [scale], [by_script, by_callable], base_dir=tmp_path), conf={"Scale": 2.0}
    )

    assert result.state == "success"
    assert load_output(result, "TrainScript", "metrics") == {"mean": 8.0}
    model_dir = Path(load_output(result, "TrainScript", "model"))
    assert json.loads((model_dir / "model.json").read_text()) == {"mean": 8.0}
    assert load_output(result, "TrainCallable", "metrics") == {"mean": 80.0, "count": 3}


def _branching_pipeline(name: str) -> Pipeline:
    """Nested conditions and a rejoin: outer (X < 10) -> inner (X in [1, 2]) -> A | B; else C; D after all."""
    x = ParameterInteger("X", default_value=1)
    a = FunctionStep("A", function=fns.echo, arguments={"value": "a"})
    b = FunctionStep("B", function=fns.echo, arguments={"value": "b"})
    c = FunctionStep("C", function=fns.echo, arguments={"value": "c"})
    reads_a = FunctionStep("ReadsA", function=fns.echo, arguments={"value": a.output("result")})
    inner = ConditionStep(
        "Inner",
        conditions=[ConditionIn(x, [1, 2])],
        if_steps=[a],
        else_steps=[b],
    )
    outer = ConditionStep(
        "Outer",
        conditions=[ConditionAnd([ConditionLessThan(x, 10), ConditionNot(ConditionGreaterThan(x, 100))])],
        if_steps=[inner],
        else_steps=[c],
    )
    rejoin = FunctionStep("Rejoin", function=fns.echo, arguments={"value": "joined"}, depends_on=[a, b, c])
    return Pipeline(name, [x], [outer, reads_a, rejoin])


@pytest.mark.parametrize(
    ("x", "ran", "skipped"),
    [
        (1, {"Outer", "Inner", "A", "ReadsA", "Rejoin"}, {"B", "C"}),
        (5, {"Outer", "Inner", "B", "Rejoin"}, {"A", "C", "ReadsA"}),
        (50, {"Outer", "C", "Rejoin"}, {"Inner", "A", "B", "ReadsA"}),
    ],
)
def test_nested_conditions_branch_and_rejoin(x: int, ran: set[str], skipped: set[str]):
    result = run(_branching_pipeline(f"branching_{x}"), conf={"X": x})
    assert result.state == "success"
    states = {task.task_id: task.state for task in result.tasks}
    assert {name for name, state in states.items() if state == "success"} == ran
    assert {name for name, state in states.items() if state == "skipped"} == skipped
    assert result.task("Outer").return_value["metadata"]["outcome"] is (x < 10)


def test_fail_step_fails_the_execution_with_its_message():
    threshold = ParameterFloat("Threshold", default_value=0.5)
    value = FunctionStep("Value", function=fns.echo, arguments={"value": 0.9})
    fail = FailStep(
        "Fail", error_message=Join(on=" ", values=["value", value.output("result"), "above", threshold])
    )
    ok = FunctionStep("Ok", function=fns.echo, arguments={"value": "fine"})
    check = ConditionStep(
        "Check",
        conditions=[ConditionLessThan(value.output("result"), threshold)],
        if_steps=[ok],
        else_steps=[fail],
    )
    result = run(Pipeline("failing", [threshold], [value, check]))
    assert result.state == "failed"
    assert result.task("Fail").state == "failed"
    assert result.task("Ok").state == "skipped"

    passing = run(Pipeline("failing", [threshold], [value, check]), conf={"Threshold": 2.0})
    assert passing.state == "success"
    assert passing.task("Fail").state == "skipped"


def test_register_model_records_a_pending_version(tmp_path: Path):
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry
    from airflow_provider_mlpipe.settings import artifact_store_for

    channel = tmp_path / "numbers"
    channel.mkdir()
    (channel / "a.txt").write_text("1 2 3")
    train = TrainingStep(
        "Train", function=fns.train_mean, hyperparameters={"scale": 1}, inputs={"train": str(channel)}
    )
    register = RegisterModel(
        "Register",
        model_data=train.output("model"),
        model_package_group_name="tests-group",
        model_metrics=train.output("metrics"),
    )
    registry = ModelRegistry(artifact_store_for())
    before = len(registry.list_versions("tests-group")) if "tests-group" in registry.list_groups() else 0
    result = run(Pipeline("registering", [], [train, register]))

    assert result.state == "success"
    package = load_output(result, "Register", "model_package")
    assert package["group"] == "tests-group"
    assert package["approval_status"] == "PendingManualApproval"
    version = registry.get("tests-group", package["version"])
    assert package["version"] == before + 1
    assert version.metrics == {"mean": 2.0, "count": 3}
    assert version.model["digest"] == result.task("Train").return_value["outputs"]["model"]["digest"]


def test_retry_policy_retries_a_failing_step(tmp_path: Path):
    marker = tmp_path / "marker"
    flaky = FunctionStep(
        "Flaky",
        function=fns.fail_once,
        arguments={"marker": str(marker)},
        retry_policy=RetryPolicy(max_attempts=2, interval_seconds=0, backoff_rate=1.0),
    )
    result = run(Pipeline("retrying", [], [flaky]))
    assert result.state == "success"
    assert result.task("Flaky").try_number == 2
    assert load_output(result, "Flaky", "result") == "second attempt"


def test_a_wrong_parameter_type_fails_before_any_step_runs(tmp_path: Path):
    marker = tmp_path / "ran"
    depth = ParameterInteger("Depth", default_value=3)
    step = FunctionStep("Touch", function=fns.fail_once, arguments={"marker": str(marker)})
    result_or_error = None
    try:
        result_or_error = run(Pipeline("typed", [depth], [step]), conf={"Depth": "deep"})
    except Exception as error:  # Airflow refuses the run: that is the expected outcome too
        result_or_error = error
    assert not marker.exists(), "a step ran although the parameter had the wrong type"
    if not isinstance(result_or_error, Exception):
        assert result_or_error.state == "failed"


def test_the_step_operators_stay_importable_without_side_effects():
    # The provider must not import pandas just to build a DAG or run a JSON-only step.
    import subprocess

    code = (
        "import sys; from airflow_provider_mlpipe.factory import build_dag;"
        "assert 'pandas' not in sys.modules, 'pandas imported at DAG build'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_selective_block_that_was_never_applied_fails_instead_of_running_every_step(tmp_path: Path):
    # What a run triggered with a selective conf block looks like when the scheduler lacks the plugin.
    marker = tmp_path / "ran"
    step = FunctionStep("Touch", function=fns.fail_once, arguments={"marker": str(marker)})
    result = run(
        Pipeline("unapplied", [], [step]), conf={"selective_execution": {"selected_steps": ["Touch"]}}
    )
    assert result.state == "failed"
    assert result.task("Touch").state == "failed"
    assert not marker.exists(), "the step ran although its selection was never applied"
