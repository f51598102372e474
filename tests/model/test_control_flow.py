"""Loops, fan-out, tuning, @step and the pipeline definition in the model (no Airflow)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mlpipe.exceptions import ExpressionError, PipelineGraphError, SpecError
from airflow_provider_mlpipe.model import (
    CategoricalParameter,
    ConditionLessThanOrEqualTo,
    ConditionStep,
    ContinuousParameter,
    ForEachItem,
    FunctionStep,
    IntegerParameter,
    LoopIteration,
    LoopStep,
    ParallelismConfiguration,
    ParameterInteger,
    ParameterList,
    Pipeline,
    TransformStep,
    TuningStep,
    step,
)
from airflow_provider_mlpipe.model.loops import MAX_LOOP_ITERATIONS


def _loop(**options) -> tuple[FunctionStep, LoopStep]:
    prepare = FunctionStep("Prepare", function="m:prepare")
    train = FunctionStep(
        "Train",
        function="m:train",
        arguments={"data": prepare.output("result"), "rounds": LoopIteration() * 10},
    )
    evaluate = FunctionStep("Evaluate", function="m:evaluate", arguments={"model": train.output("result")})
    options.setdefault("until", [ConditionLessThanOrEqualTo(evaluate.output("result"), 1.0)])
    options.setdefault("max_iterations", 3)
    loop = LoopStep("Retrain", steps=[train, evaluate], outputs={"model": train.output("result")}, **options)
    return prepare, loop


def test_a_loop_is_unrolled_into_iterations_each_closed_by_its_exit_test():
    prepare, loop = _loop()
    pipeline = Pipeline("p", steps=[prepare, loop]).validate(check_files=False)
    upstream = pipeline.upstream()
    assert [name for name in pipeline.topological_order() if name.startswith("Retrain")][-1] == "Retrain"
    assert upstream["Retrain.1.Train"] == {"Prepare"}
    assert upstream["Retrain.2.Train"] == {"Prepare", "Retrain.1.until"}
    assert upstream["Retrain"] == {"Retrain.1.until", "Retrain.2.until", "Retrain.3.until"}
    first = pipeline.steps["Retrain.1.until"]
    assert isinstance(first, ConditionStep)
    assert first.if_steps == [] and first.else_steps == [
        "Retrain.2.Train",
        "Retrain.2.Evaluate",
        "Retrain.2.until",
    ]
    assert first.later_steps[-1] == "Retrain.3.until"
    # References between body steps point into the same iteration; the iteration number is filled in.
    train_2 = pipeline.steps["Retrain.2.Train"].definition()
    assert train_2["arguments"]["rounds"] == {"mul": [{"loop": "iteration", "value": 2}, 10]}
    assert (
        pipeline.steps["Retrain.2.Evaluate"].definition()["arguments"]["model"]["step"] == "Retrain.2.Train"
    )
    assert (
        pipeline.steps["Retrain.2.until"].definition()["conditions"][0]["le"][0]["step"]
        == "Retrain.2.Evaluate"
    )
    assert pipeline.steps["Retrain.2.Train"].display_name == "Train #2"
    assert pipeline.step("Retrain").output_names() == ["model"]


def test_a_loop_without_a_condition_runs_every_iteration_one_after_the_other():
    prepare, loop = _loop(until=None, max_iterations=2)
    pipeline = Pipeline("p", steps=[prepare, loop]).validate(check_files=False)
    assert pipeline.upstream()["Retrain.2.Train"] == {"Prepare", "Retrain.1.Train", "Retrain.1.Evaluate"}
    assert pipeline.upstream()["Retrain"] == {"Retrain.2.Train", "Retrain.2.Evaluate"}
    assert not any(name.endswith(".until") for name in pipeline.steps)


def test_a_loop_needs_an_exit_and_a_bounded_number_of_iterations():
    with pytest.raises(SpecError, match="a loop needs an exit") as error:
        _loop(until=None, max_iterations=None)
    assert error.value.step == "Retrain"
    with pytest.raises(SpecError, match=f"above the bound of {MAX_LOOP_ITERATIONS}"):
        _loop(max_iterations=MAX_LOOP_ITERATIONS + 1)
    assert _loop(max_iterations=None)[1].max_iterations == 10  # with a condition: a default bound


def test_outside_steps_read_the_loop_not_its_body():
    prepare, loop = _loop()
    after = FunctionStep("After", function="m:after", arguments={"model": loop.body[0].output("result")})
    with pytest.raises(PipelineGraphError, match="inside loop 'Retrain': read the loop's outputs"):
        Pipeline("p", steps=[prepare, loop, after]).validate(check_files=False)


def test_a_loop_in_a_condition_branch_is_refused():
    prepare, loop = _loop()
    gate = ConditionStep(
        "Gate", conditions=[ConditionLessThanOrEqualTo(prepare.output("result"), 1)], if_steps=[loop]
    )
    with pytest.raises(SpecError, match="a loop cannot be in a branch of condition step 'Gate'"):
        Pipeline("p", steps=[prepare, gate]).validate(check_files=False)


def test_fan_out_is_checked_when_the_step_is_declared():
    integer = ParameterInteger("Depth", 3)
    with pytest.raises(SpecError, match="parameter 'Depth' is Integer; declare it with type: List") as error:
        FunctionStep("Sweep", function="m:f", for_each=integer)
    assert (error.value.step, error.value.field) == ("Sweep", "for_each")
    with pytest.raises(SpecError, match="for_each must be a list"):
        FunctionStep("Sweep", function="m:f", for_each=5)
    with pytest.raises(SpecError, match="empty list"):
        FunctionStep("Sweep", function="m:f", for_each=[])
    with pytest.raises(SpecError, match="max_concurrency needs for_each"):
        FunctionStep("Sweep", function="m:f", max_concurrency=2)
    with pytest.raises(SpecError, match="a condition step cannot run once per item"):
        ConditionStep("C", conditions=[ConditionLessThanOrEqualTo(1, 2)], for_each=[1])
    with pytest.raises(SpecError, match=r"\{item\} is used in a step without for_each"):
        Pipeline("p", steps=[FunctionStep("F", function="m:f", arguments={"x": ForEachItem()})]).validate(
            check_files=False
        )
    depths = ParameterList("Depths", [1, 2])
    sweep = FunctionStep(
        "Sweep", function="m:f", arguments={"x": ForEachItem()}, for_each=depths, max_concurrency=2
    )
    assert Pipeline("p", [depths], [sweep]).validate(check_files=False).steps["Sweep"].is_fan_out


def test_list_parameters_take_json_or_comma_separated_text():
    depths = ParameterList("Depths", [3])
    assert depths.parse_text("[3, 5]") == [3, 5]
    assert depths.parse_text("3,5.5,deep") == [3, 5.5, "deep"]
    assert depths.json_schema() == {"type": "array"}


def test_tuning_ranges_are_checked_and_trials_listed():
    with pytest.raises(SpecError, match="the range is empty: min_value 5 is above max_value 2") as error:
        TuningStep(
            "Tune",
            function="m:fit",
            hyperparameter_ranges={"d": IntegerParameter(5, 2)},
            objective_metric_name="mse",
        )
    assert (error.value.step, error.value.field) == ("Tune", "hyperparameter_ranges.d")
    with pytest.raises(SpecError, match="values lists nothing"):
        TuningStep(
            "Tune",
            function="m:fit",
            hyperparameter_ranges={"k": CategoricalParameter([])},
            objective_metric_name="mse",
        )
    with pytest.raises(SpecError, match="grid search cannot list a Continuous range"):
        TuningStep(
            "Tune",
            function="m:fit",
            hyperparameter_ranges={"e": ContinuousParameter(0.1, 0.5)},
            objective_metric_name="mse",
        )
    with pytest.raises(SpecError, match="grid search has 100 combinations, more than max_jobs"):
        TuningStep(
            "Tune",
            function="m:fit",
            hyperparameter_ranges={"a": IntegerParameter(1, 10), "b": IntegerParameter(1, 10)},
            objective_metric_name="mse",
            max_jobs=50,
        )
    grid = TuningStep(
        "Tune",
        function="m:fit",
        hyperparameter_ranges={"d": IntegerParameter(2, 3), "k": CategoricalParameter(["a", "b"])},
        objective_metric_name="mse",
    )
    assert grid.trials() == [{"d": 2, "k": "a"}, {"d": 2, "k": "b"}, {"d": 3, "k": "a"}, {"d": 3, "k": "b"}]
    random = TuningStep(
        "Tune",
        function="m:fit",
        hyperparameter_ranges={
            "e": ContinuousParameter(0.01, 1.0, "Logarithmic"),
            "d": IntegerParameter(1, 9),
        },
        objective_metric_name="mse",
        strategy="Random",
        max_jobs=5,
        random_seed=7,
    )
    trials = random.trials()
    assert len(trials) == 5 and trials == random.trials()  # the same seed draws the same trials
    assert all(0.01 <= trial["e"] <= 1.0 and 1 <= trial["d"] <= 9 for trial in trials)


def test_the_step_decorator_builds_a_pipeline_from_function_results():
    @step
    def prepare(rows: int):
        return {"rows": rows}

    @step(name="fit", retry_policy=None, timeout=60)
    def train(data, depth):
        return [data["rows"], depth]

    depth = ParameterInteger("Depth", 3)
    data = prepare(rows=10)
    first = train(data, depth)
    second = train(data["rows"], depth=first[1])
    pipeline = Pipeline("decorated", parameters=[depth], steps=[second]).validate(check_files=False)
    assert sorted(pipeline.steps) == ["fit", "fit-2", "prepare"]
    assert pipeline.upstream()["fit-2"] == {"fit", "prepare"}
    arguments = pipeline.steps["fit-2"].definition()["arguments"]
    assert arguments == {
        "data": {"step": "prepare", "output": "result", "keys": ["rows"]},
        "depth": {"step": "fit", "output": "result", "keys": [1]},
    }
    assert pipeline.steps["fit"].timeout == 60
    with pytest.raises(SpecError, match="lambda"):
        step(lambda: 1)
    with pytest.raises(TypeError, match="cannot be unpacked"):
        a, b = first


def test_the_definition_is_canonical_json_with_digests():
    prepare, loop = _loop()
    build = lambda: Pipeline(  # noqa: E731
        "p", steps=[prepare, loop], parallelism_config=ParallelismConfiguration(3), schedule="@daily"
    ).validate(check_files=False)
    text = build().definition()
    assert text == build().definition()
    document = json.loads(text)
    assert document["parallelism"] == {"max_parallel_execution_steps": 3}
    assert document["schedule"] == "@daily"
    names = [item["name"] for item in document["steps"]]
    assert names.index("Retrain.1.until") < names.index("Retrain.2.Train") < names.index("Retrain")
    assert all(item["digest"].startswith("sha256:") for item in document["steps"])


def test_schedules_and_limits_are_checked():
    with pytest.raises(SpecError, match="not a valid cron expression"):
        Pipeline("p", steps=[FunctionStep("F", function="m:f")], schedule="every day")
    with pytest.raises(SpecError, match="unknown schedule preset"):
        Pipeline("p", steps=[FunctionStep("F", function="m:f")], schedule="@fortnightly")
    with pytest.raises(SpecError, match="max_parallel_execution_steps must be an integer"):
        ParallelismConfiguration(0)
    with pytest.raises(SpecError, match="timeout must be more than 0"):
        FunctionStep("F", function="m:f", timeout=-1)


def test_a_transform_step_needs_one_model_and_one_program():
    with pytest.raises(SpecError, match="exactly one of 'model_data'"):
        TransformStep("Predict", data="x.csv", code="predict.py")
    with pytest.raises(SpecError, match="exactly one of 'code' and 'function'"):
        TransformStep("Predict", data="x.csv", model_package_group_name="g")
    with pytest.raises(SpecError, match="model_version must be"):
        TransformStep(
            "Predict", data="x.csv", model_package_group_name="g", model_version="newest", code="p.py"
        )


def test_an_item_path_that_the_item_lacks_names_the_item():
    class Context:
        def item(self):
            return {"depth": 3}

    assert ForEachItem("depth").evaluate(Context()) == 3  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="item {'depth': 3} has no 'eta'"):
        ForEachItem("eta").evaluate(Context())  # type: ignore[arg-type]
