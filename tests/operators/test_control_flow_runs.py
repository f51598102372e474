"""Loops, fan-out, tuning, transform and @step pipelines run through real Airflow (local runner)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_mlpipe.model import (
    CategoricalParameter,
    ConditionLessThanOrEqualTo,
    ForEachItem,
    FunctionStep,
    IntegerParameter,
    LoopIteration,
    LoopStep,
    ParallelismConfiguration,
    ParameterFloat,
    ParameterList,
    Pipeline,
    TransformStep,
    TuningStep,
)

pytestmark = pytest.mark.usefixtures("airflow_home")
FUNCTIONS = "tests.operators.control_functions"


def run(pipeline: Pipeline, conf: dict | None = None):
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    return run_dag_locally(build_dag(pipeline), conf=conf)


def load(result, step: str, output: str):
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value
    from airflow_provider_mlpipe.settings import artifact_store_for

    return load_value(
        artifact_store_for(), ArtifactRef.from_dict(result.task(step).return_value["outputs"][output])
    )


def control_pipeline(name: str) -> Pipeline:
    prepare = FunctionStep("Prepare", function=f"{FUNCTIONS}:prepare")
    train = FunctionStep(
        "Train",
        function=f"{FUNCTIONS}:train",
        arguments={"data": prepare.output("result"), "rounds": LoopIteration()},
    )
    evaluate = FunctionStep(
        "Evaluate", function=f"{FUNCTIONS}:evaluate", arguments={"model": train.output("result")}
    )
    target = ParameterFloat("Target", 4.0)
    loop = LoopStep(
        "Retrain",
        steps=[train, evaluate],
        until=[ConditionLessThanOrEqualTo(evaluate.output("result"), target)],
        max_iterations=5,
        outputs={"model": train.output("result"), "mse": evaluate.output("result")},
    )
    depths = ParameterList("Depths", [1, 2, 3])
    square = FunctionStep(
        "Square",
        function=f"{FUNCTIONS}:square",
        arguments={"x": ForEachItem(), "scale": loop.output("model").__class__("Retrain", "model", "rounds")},
        for_each=depths,
        max_concurrency=2,
    )
    total = FunctionStep(
        "Total", function=f"{FUNCTIONS}:total", arguments={"values": square.output("result")}
    )
    tune = TuningStep(
        "Tune",
        function=f"{FUNCTIONS}:fit",
        hyperparameter_ranges={"max_depth": IntegerParameter(2, 4), "kind": CategoricalParameter(["a", "b"])},
        objective_metric_name="mse",
        max_parallel_jobs=2,
    )
    predict = TransformStep(
        "Predict",
        function=f"{FUNCTIONS}:predict",
        model_data=tune.output("model"),
        data="data.csv",
        timeout=120,
    )
    return Pipeline(
        name,
        parameters=[target, depths],
        steps=[prepare, loop, square, total, tune, predict],
        parallelism_config=ParallelismConfiguration(3),
    )


@pytest.fixture(scope="module")
def control_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("control")
    (folder / "data.csv").write_text("a,b\n1,2\n3,4\n")
    pipeline = control_pipeline("control_flow")
    pipeline.base_dir = folder
    for item in pipeline.steps.values():
        item.base_dir = folder
    return run(pipeline)


def test_the_loop_runs_until_its_condition_holds_and_gives_the_last_iterations_outputs(control_run):
    states = {task.task_id: task.state for task in control_run.tasks}
    assert control_run.state == "success", states
    # mse = 10 / rounds: 10, 5, 3.33 -> the condition (<= 4) holds after iteration 3.
    for iteration in (1, 2, 3):
        assert states[f"Retrain.{iteration}.Train"] == states[f"Retrain.{iteration}.until"] == "success"
    for iteration in (4, 5):
        assert states[f"Retrain.{iteration}.Train"] == states[f"Retrain.{iteration}.until"] == "skipped"
    assert control_run.task("Retrain.2.until").return_value["metadata"]["outcome"] is False
    assert control_run.task("Retrain").return_value["metadata"] == {
        "iterations": 3,
        "max_iterations": 5,
        "condition_met": True,
    }
    assert load(control_run, "Retrain", "model") == {"rounds": 3, "mse": 10 / 3}
    # The loop's outputs are the last iteration's artifacts themselves: nothing is copied.
    loop_outputs = control_run.task("Retrain").return_value["outputs"]
    assert (
        loop_outputs["model"]["digest"]
        == control_run.task("Retrain.3.Train").return_value["outputs"]["result"]["digest"]
    )


def test_a_fan_out_runs_once_per_item_and_collects_the_results_in_order(control_run):
    assert load(control_run, "Square", "result") == [3, 12, 27]  # x * x * rounds (3)
    assert load(control_run, "Total", "result") == 42
    assert control_run.task("Square").return_value["metadata"]["items"] == 3
    assert not any(task.task_id.startswith("_") for task in control_run.tasks)  # internal tasks are not steps


def test_the_tuning_step_picks_the_best_trial_and_records_every_trial(control_run):
    metadata = control_run.task("Tune").return_value["metadata"]
    assert len(metadata["trials"]) == 6
    assert metadata["best_hyperparameters"] == {"max_depth": 3, "kind": "a"}
    assert metadata["objective"] == {"metric": "mse", "type": "Minimize", "value": 0}
    assert [trial["metrics"]["mse"] for trial in metadata["trials"]] == [1, 1.5, 0, 0.5, 1, 1.5]
    assert load(control_run, "Tune", "best_hyperparameters") == {"max_depth": 3, "kind": "a"}
    assert len(load(control_run, "Tune", "trials")) == 6
    model_dir = Path(load(control_run, "Tune", "model"))
    assert json.loads((model_dir / "model.json").read_text()) == {"max_depth": 3, "kind": "a"}


def test_the_transform_step_predicts_with_the_tuned_model(control_run):
    predictions = json.loads(
        (Path(load(control_run, "Predict", "predictions")) / "predictions.json").read_text()
    )
    assert predictions == {"rows": 3, "model": {"max_depth": 3, "kind": "a"}}


def test_dag_options_map_to_airflow():
    from airflow_provider_mlpipe.factory import build_dag

    dag = build_dag(control_pipeline("control_options"), validate=False)
    assert dag.max_active_tasks == 3
    assert dag.task_dict["_Square.each"].max_active_tis_per_dagrun == 2
    assert dag.task_dict["_Tune.each"].max_active_tis_per_dagrun == 2
    assert dag.task_dict["Predict"].execution_timeout == timedelta(seconds=120)
    assert dag.task_dict["Retrain.2.Train"].task_display_name == "Train #2"


def test_a_failing_item_fails_its_step_only_and_names_the_item():
    pipeline = Pipeline(
        "fan_out_failure",
        parameters=[ParameterList("Values", [2, -1])],
        steps=[
            FunctionStep(
                "Square",
                function=f"{FUNCTIONS}:square",
                arguments={"x": ForEachItem()},
                for_each=ParameterList("Values", [2, -1]),
            ),
            FunctionStep("Other", function=f"{FUNCTIONS}:prepare"),
        ],
    )
    result = run(pipeline)
    states = {task.task_id: task.state for task in result.tasks}
    assert result.state == "failed"
    assert states == {"Square": "upstream_failed", "Other": "success"}
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.dagruns import FAILURE_KEY, read_step_records

    with create_session() as session:
        failures = read_step_records("fan_out_failure", result.run_id, session=session, key=FAILURE_KEY)
    assert failures["_Square.each"]["reason"] == "step 'Square', item -1: ValueError: negative item -1"


def test_a_for_each_that_is_not_a_list_at_run_time_fails_with_the_expression():
    producer = FunctionStep("Prepare", function=f"{FUNCTIONS}:evaluate", arguments={"model": {"mse": 2}})
    sweep = FunctionStep(
        "Sweep",
        function=f"{FUNCTIONS}:square",
        arguments={"x": ForEachItem()},
        for_each=producer.output("result"),
    )
    result = run(Pipeline("fan_out_not_a_list", steps=[producer, sweep]))
    assert result.state == "failed"
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.dagruns import FAILURE_KEY, read_step_records

    with create_session() as session:
        failures = read_step_records("fan_out_not_a_list", result.run_id, session=session, key=FAILURE_KEY)
    reason = failures["_Sweep.items"]["reason"]
    assert "step 'Sweep': for_each {'step': 'Prepare', 'output': 'result'} gave int 2, not a list" in reason


def test_the_readme_step_decorator_example_runs(tmp_path: Path):
    import re
    import sys
    import types

    from airflow_provider_mlpipe.client.local import LocalSession

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL) if "@step" in b]
    # As in a DAG file: a module of its own, so that the functions are importable by name.
    module = types.ModuleType("readme_step_example")
    module.__file__ = str(tmp_path / "readme_step_example.py")
    sys.modules[module.__name__] = module
    try:
        exec(compile(block, module.__file__, "exec"), module.__dict__)
        pipeline = module.__dict__["pipeline"]
        execution = pipeline.start(parameters={"Depth": 5}, session=LocalSession())
        assert execution.describe().status == "success"
        assert sorted(step.step_name for step in execution.list_steps()) == ["fit", "prepare"]
        assert execution.result("fit") == {"depth": 5, "score": 9.0}
    finally:
        del sys.modules[module.__name__]
