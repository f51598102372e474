"""The pipeline graph: dependencies, order, step collection, and every graph error with where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import ParameterValidationError, PipelineGraphError, SpecError
from airflow_provider_mlpipe.model.conditions import ConditionGreaterThan, ConditionLessThanOrEqualTo
from airflow_provider_mlpipe.model.expressions import JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import ParameterFloat, ParameterInteger, ParameterString
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.model.steps import (
    ConditionStep,
    FailStep,
    FunctionStep,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
)

THRESHOLD = ParameterFloat("MseThreshold", default_value=6.0)


def fn(name: str, outputs: tuple[str, ...] = ("result",), **arguments: Any) -> FunctionStep:
    """A function step (no script file) reading ``arguments``; options such as depends_on go in ``options``."""
    options = arguments.pop("options", {})
    return FunctionStep(
        name, function="package.module:function", arguments=arguments, outputs=outputs, **options
    )


def evaluate_step(name: str = "evaluate", **options: Any) -> ProcessingStep:
    return ProcessingStep(
        name,
        code="evaluate.py",
        outputs=[ProcessingOutput("evaluation")],
        property_files=[PropertyFile("metrics", "evaluation", "metrics.json")],
        **options,
    )


def graph_error(pipeline: Pipeline, error_type: type[SpecError] = PipelineGraphError) -> SpecError:
    """Validate (without file checks) and return the error, which must be of exactly ``error_type``."""
    with pytest.raises(SpecError) as raised:
        pipeline.validate(check_files=False)
    assert type(raised.value) is error_type
    return raised.value


def abalone(**pipeline_options: Any) -> Pipeline:
    """prep -> train -> evaluate -> check -> (register | fail)."""
    prep = fn("prep", outputs=("train", "test"))
    train = fn("train", outputs=("model",), data=prep.output("train"), depth=ParameterInteger("MaxDepth"))
    evaluate = evaluate_step(
        inputs=[ProcessingInput("model", train.output("model")), ProcessingInput("test", prep.output("test"))]
    )
    register = RegisterModel("register", model_data=train.output("model"), model_package_group_name="abalone")
    fail = FailStep("fail", error_message="mse too high")
    mse = JsonGet(evaluate, "metrics", "regression_metrics.mse.value")
    check = ConditionStep(
        "check",
        conditions=[ConditionLessThanOrEqualTo(mse, THRESHOLD)],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        "abalone",
        parameters=[ParameterInteger("MaxDepth", default_value=5), THRESHOLD],
        steps=[prep, train, evaluate, check],
        **pipeline_options,
    )


# -- dependencies and order ----------------------------------------------------------------------


def test_upstream_comes_from_outputs_json_get_and_branches() -> None:
    assert abalone().upstream() == {
        "prep": set(),
        "train": {"prep"},
        "evaluate": {"train", "prep"},
        "check": {"evaluate"},
        "register": {"check", "train"},
        "fail": {"check"},
    }


def test_upstream_comes_from_depends_on() -> None:
    first = fn("first")
    second = fn("second", options={"depends_on": [first, "third"]})
    third = fn("third")

    assert Pipeline("p", steps=[first, second, third]).upstream()["second"] == {"first", "third"}


def test_valid_pipeline_validates_and_returns_itself() -> None:
    pipeline = abalone()

    assert pipeline.validate(check_files=False) is pipeline


def test_topological_order_puts_every_step_after_its_upstream() -> None:
    pipeline = abalone()

    order = pipeline.topological_order()

    assert sorted(order) == sorted(pipeline.steps)
    for name, upstream in pipeline.upstream().items():
        assert all(order.index(dependency) < order.index(name) for dependency in upstream), name


def test_topological_order_of_a_chain_given_backwards() -> None:
    a = fn("a")
    b = fn("b", x=a.output("result"))
    c = fn("c", x=b.output("result"))

    assert Pipeline("p", steps=[c, b, a]).topological_order() == ["a", "b", "c"]


def test_topological_order_is_the_same_every_time() -> None:
    assert abalone().topological_order() == abalone().topological_order()


def test_steps_reachable_through_branches_and_depends_on_are_collected() -> None:
    base = fn("base")
    register = RegisterModel("register", model_data="m", model_package_group_name="g", depends_on=[base])
    fail = FailStep("fail")
    check = ConditionStep(
        "check", conditions=[ConditionGreaterThan(1, 0)], if_steps=[register], else_steps=[fail]
    )

    pipeline = Pipeline("p", steps=[check])

    assert list(pipeline.steps) == ["check", "register", "fail", "base"]
    assert pipeline.validate(check_files=False) is pipeline


def test_a_step_reachable_twice_is_collected_once() -> None:
    shared = fn("shared")
    first = fn("first", options={"depends_on": [shared]})
    second = fn("second", options={"depends_on": [shared]})

    assert list(Pipeline("p", steps=[first, second, shared]).steps) == ["first", "second", "shared"]


def test_steps_only_referenced_by_output_are_not_collected() -> None:
    hidden = fn("hidden")
    reader = fn("reader", x=hidden.output("result"))

    pipeline = Pipeline("p", steps=[reader])

    assert list(pipeline.steps) == ["reader"]
    assert "reference to unknown step 'hidden'" in str(graph_error(pipeline))


def test_steps_get_the_pipeline_base_dir_unless_they_have_one(tmp_path: Path) -> None:
    own = fn("own")
    own.base_dir = tmp_path / "elsewhere"
    inherits = fn("inherits")

    Pipeline("p", steps=[own, inherits], base_dir=str(tmp_path))

    assert own.base_dir == tmp_path / "elsewhere"
    assert inherits.base_dir == tmp_path


def test_step_lookup_by_name() -> None:
    pipeline = abalone()

    assert pipeline.step("train") is pipeline.steps["train"]
    with pytest.raises(PipelineGraphError, match="no step named 'ghost'"):
        pipeline.step("ghost")


def test_branch_owner() -> None:
    assert abalone().branch_owner() == {"register": ("check", "if"), "fail": ("check", "else")}


# -- graph errors ------------------------------------------------------------------------------


def cycle_in(message: str) -> list[str]:
    return message.split("the steps form a cycle: ", 1)[1].split(" -> ")


def test_cycle_through_outputs_shows_the_cycle() -> None:
    a = FunctionStep("a", function="m:f", arguments={"x": StepOutput("c", "result")})
    b = fn("b", x=a.output("result"))
    c = fn("c", x=b.output("result"))
    free = fn("free")

    error = graph_error(Pipeline("p", steps=[free, a, b, c]))

    cycle = cycle_in(str(error))
    assert cycle[0] == cycle[-1] == error.step
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    assert str(error).startswith(f"step '{error.step}': the steps form a cycle: ")


def test_cycle_through_depends_on_is_found_by_topological_order() -> None:
    a = fn("a", options={"depends_on": ["b"]})
    b = fn("b", options={"depends_on": ["a"]})

    with pytest.raises(PipelineGraphError) as raised:
        Pipeline("p", steps=[a, b]).topological_order()

    assert sorted(cycle_in(str(raised.value))[:-1]) == ["a", "b"]


def test_a_step_depending_on_itself_is_a_cycle() -> None:
    error = graph_error(Pipeline("p", steps=[fn("a", options={"depends_on": ["a"]})]))

    assert str(error) == "step 'a': the steps form a cycle: a -> a"


def test_condition_reading_a_step_of_its_own_branch_is_a_cycle() -> None:
    inside = evaluate_step("inside")
    check = ConditionStep(
        "check", conditions=[ConditionGreaterThan(JsonGet(inside, "metrics", "x"), 1)], if_steps=[inside]
    )

    error = graph_error(Pipeline("p", steps=[check]))

    assert sorted(cycle_in(str(error))[:-1]) == ["check", "inside"]


def test_depends_on_an_unknown_step() -> None:
    error = graph_error(Pipeline("p", steps=[fn("train", options={"depends_on": ["ghost"]})]))

    assert (error.step, error.field) == ("train", "depends_on")
    assert str(error) == "step 'train', field 'depends_on': depends on unknown step 'ghost'"


@pytest.mark.parametrize(
    "reference",
    [StepOutput("ghost", "result"), JsonGet("ghost", "metrics", "a.b")],
    ids=["step-output", "json-get"],
)
def test_reference_to_an_unknown_step(reference: Any) -> None:
    error = graph_error(Pipeline("p", steps=[fn("train", data=[reference])]))

    assert (error.step, error.field) == ("train", "arguments.data")
    assert "reference to unknown step 'ghost'" in str(error)


@pytest.mark.parametrize("branch", ["if_steps", "else_steps"])
def test_unknown_step_in_a_branch(branch: str) -> None:
    check = ConditionStep("check", conditions=[ConditionGreaterThan(1, 0)], **{branch: ["ghost"]})

    error = graph_error(Pipeline("p", steps=[check]))

    assert (error.step, error.field) == ("check", branch)
    assert f"unknown step 'ghost' in {branch}" in str(error)


def test_unknown_output_lists_the_outputs_the_step_has() -> None:
    prep = fn("prep", outputs=("train", "test"))

    error = graph_error(Pipeline("p", steps=[prep, fn("train", data=prep.output("validation"))]), SpecError)

    assert (error.step, error.field) == ("train", "arguments.data")
    assert str(error) == (
        "step 'train', field 'arguments.data': step 'prep' has no output 'validation' (it has: train, test)"
    )


def test_unknown_output_of_a_step_without_outputs() -> None:
    fail = FailStep("fail")

    error = graph_error(Pipeline("p", steps=[fail, fn("after", x=fail.output("result"))]), SpecError)

    assert "step 'fail' has no output 'result' (it has: none)" in str(error)


def test_unknown_property_file_lists_those_the_step_has() -> None:
    evaluate = evaluate_step()
    check = ConditionStep("check", conditions=[ConditionGreaterThan(JsonGet(evaluate, "report", "mse"), 1)])

    error = graph_error(Pipeline("p", steps=[evaluate, check]), SpecError)

    assert (error.step, error.field) == ("check", "conditions[0]")
    assert "step 'evaluate' has no property file 'report' (it has: metrics)" in str(error)


def test_json_get_of_a_step_without_property_files() -> None:
    prep = fn("prep")

    error = graph_error(Pipeline("p", steps=[prep, fn("after", x=JsonGet(prep, "metrics", "a"))]), SpecError)

    assert "step 'prep' has no property file 'metrics' (it has: none)" in str(error)


def test_property_file_in_an_unknown_output() -> None:
    step = ProcessingStep(
        "evaluate",
        code="evaluate.py",
        outputs=[ProcessingOutput("evaluation")],
        property_files=[PropertyFile("metrics", "report", "metrics.json")],
    )

    error = graph_error(Pipeline("p", steps=[step]), SpecError)

    assert (error.step, error.field) == ("evaluate", "property_files")
    assert "property file 'metrics' is in unknown output 'report'" in str(error)


def test_duplicate_output_names() -> None:
    error = graph_error(Pipeline("p", steps=[fn("prep", outputs=("data", "data"))]), SpecError)

    assert (error.step, error.field) == ("prep", "outputs")
    assert "duplicate output names" in str(error)


def test_unknown_parameter() -> None:
    pipeline = Pipeline(
        "p",
        parameters=[ParameterInteger("MaxDepth", default_value=5)],
        steps=[fn("train", rate=THRESHOLD * 2)],
    )

    error = graph_error(pipeline, SpecError)

    assert (error.step, error.field) == ("train", "arguments.rate")
    assert str(error) == "step 'train', field 'arguments.rate': unknown parameter 'MseThreshold'"


@pytest.mark.parametrize(
    "reference",
    [StepOutput("self", "result"), JsonGet("self", "metrics", "a")],
    ids=["step-output", "json-get"],
)
def test_a_step_cannot_read_its_own_output(reference: Any) -> None:
    step = ProcessingStep(
        "self",
        code="x.py",
        outputs=[ProcessingOutput("result")],
        property_files=[PropertyFile("metrics", "result", "m.json")],
        job_arguments=[reference],
    )

    error = graph_error(Pipeline("p", steps=[step]))

    assert (error.step, error.field) == ("self", "job_arguments[0]")
    assert "a step cannot read its own output" in str(error)


def test_duplicate_step_names() -> None:
    with pytest.raises(PipelineGraphError) as raised:
        Pipeline("p", steps=[fn("train"), fn("train")])

    assert (raised.value.step, raised.value.field) == ("train", "name")
    assert str(raised.value) == "step 'train', field 'name': duplicate step name"


def test_duplicate_step_names_reached_through_a_branch() -> None:
    check = ConditionStep("check", conditions=[ConditionGreaterThan(1, 0)], if_steps=[fn("train")])

    with pytest.raises(PipelineGraphError, match="duplicate step name"):
        Pipeline("p", steps=[fn("train"), check])


def test_duplicate_parameters() -> None:
    with pytest.raises(SpecError) as raised:
        Pipeline("p", parameters=[ParameterString("Bucket"), ParameterInteger("Bucket")], steps=[fn("a")])

    assert raised.value.field == "parameters.Bucket"
    assert "duplicate parameter 'Bucket'" in str(raised.value)


def test_a_step_in_both_branches() -> None:
    both = fn("both")
    check = ConditionStep(
        "check", conditions=[ConditionGreaterThan(1, 0)], if_steps=[both], else_steps=[both]
    )

    error = graph_error(Pipeline("p", steps=[check]))

    assert (error.step, error.field) == ("check", "else_steps")
    assert "step 'both' is in both if_steps and else_steps" in str(error)


def test_a_step_twice_in_the_same_branch_is_not_reported_as_in_both() -> None:
    twice = fn("twice")
    check = ConditionStep("check", conditions=[ConditionGreaterThan(1, 0)], if_steps=[twice, twice])

    with pytest.raises(PipelineGraphError) as raised:
        Pipeline("p", steps=[check]).validate(check_files=False)

    assert "both if_steps and else_steps" not in str(raised.value)


def test_a_step_in_branches_of_two_condition_steps() -> None:
    shared = fn("shared")
    first = ConditionStep("first", conditions=[ConditionGreaterThan(1, 0)], if_steps=[shared])
    second = ConditionStep("second", conditions=[ConditionGreaterThan(1, 0)], else_steps=[shared])

    error = graph_error(Pipeline("p", steps=[first, second]))

    assert error.step == "shared"
    assert "step is in branches of two condition steps ('first', 'second')" in str(error)
    assert "depends_on" in str(error)


def test_empty_pipeline() -> None:
    error = graph_error(Pipeline("p"), SpecError)

    assert error.field == "steps"
    assert "a pipeline needs at least one step" in str(error)


@pytest.mark.parametrize("name", ["", "../x", "a/b", "a" * 201, None])
def test_invalid_pipeline_name(name: Any) -> None:
    with pytest.raises(SpecError) as raised:
        Pipeline(name, steps=[fn("a")])

    assert raised.value.field == "name"
    assert f"invalid pipeline name {name!r}" in str(raised.value)


def test_pipeline_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError):
        Pipeline("abalone\n", steps=[fn("a")])


def test_something_that_is_not_a_step() -> None:
    with pytest.raises(SpecError, match="expected a step, got 'train'"):
        Pipeline("p", steps=["train"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "build",
    [
        lambda: ProcessingStep("s", code="x.py", outputs=[ProcessingOutput("../escape")]),
        lambda: ProcessingStep("s", code="x.py", inputs=[ProcessingInput("../escape", "data.csv")]),
        lambda: FunctionStep("s", function="m:f", outputs=["../escape"]),
    ],
    ids=["processing-output", "processing-input", "function-output"],
)
def test_path_like_input_and_output_names_are_refused(build: Any) -> None:
    with pytest.raises(SpecError):
        Pipeline("p", steps=[build()]).validate(check_files=False)


# -- script files ----------------------------------------------------------------------------------


def test_missing_script_file_is_an_error_only_when_files_are_checked(tmp_path: Path) -> None:
    pipeline = Pipeline("p", steps=[evaluate_step()], base_dir=tmp_path)

    with pytest.raises(SpecError) as raised:
        pipeline.validate()

    assert type(raised.value) is SpecError
    assert (raised.value.step, raised.value.field) == ("evaluate", "code")
    assert f"script file not found: {tmp_path / 'evaluate.py'}" in str(raised.value)
    assert pipeline.validate(check_files=False) is pipeline


def test_existing_script_file_validates(tmp_path: Path) -> None:
    (tmp_path / "evaluate.py").write_text("print('ok')\n")

    pipeline = Pipeline("p", steps=[evaluate_step()], base_dir=tmp_path)

    assert pipeline.validate() is pipeline


def test_a_folder_is_not_a_script_file(tmp_path: Path) -> None:
    (tmp_path / "evaluate.py").mkdir()

    with pytest.raises(SpecError, match="script file not found"):
        Pipeline("p", steps=[evaluate_step()], base_dir=tmp_path).validate()


# -- locations: errors say file:line ---------------------------------------------------------------


def test_error_names_the_line_of_the_exact_field() -> None:
    locations = {("train", "arguments.rate"): 13, ("train", "arguments"): 12, ("train", None): 10}
    pipeline = Pipeline(
        "p", steps=[fn("train", rate=THRESHOLD)], source_file="pipe.yaml", locations=locations
    )

    error = graph_error(pipeline, SpecError)

    assert (error.file, error.line) == ("pipe.yaml", 13)
    assert (
        str(error) == "pipe.yaml:13, step 'train', field 'arguments.rate': unknown parameter 'MseThreshold'"
    )


def test_error_falls_back_to_the_line_of_the_field_group() -> None:
    locations = {("train", "arguments"): 12, ("train", None): 10}
    pipeline = Pipeline(
        "p", steps=[fn("train", rate=THRESHOLD)], source_file="pipe.yaml", locations=locations
    )

    assert graph_error(pipeline, SpecError).line == 12


def test_error_with_an_indexed_field_falls_back_to_the_field_name() -> None:
    evaluate = evaluate_step()
    check = ConditionStep("check", conditions=[ConditionGreaterThan(JsonGet(evaluate, "report", "mse"), 1)])
    locations = {("check", "conditions"): 21, ("check", None): 20}

    error = graph_error(
        Pipeline("p", steps=[evaluate, check], source_file="pipe.yaml", locations=locations), SpecError
    )

    assert str(error).startswith("pipe.yaml:21, step 'check', field 'conditions[0]': ")


def test_error_falls_back_to_the_line_of_the_step() -> None:
    pipeline = Pipeline(
        "p",
        steps=[fn("train", options={"depends_on": ["ghost"]})],
        source_file="pipe.yaml",
        locations={("train", None): 10, ("other", "depends_on"): 99},
    )

    error = graph_error(pipeline)

    assert str(error) == "pipe.yaml:10, step 'train', field 'depends_on': depends on unknown step 'ghost'"


def test_error_without_a_known_line_names_the_file() -> None:
    pipeline = Pipeline("p", steps=[fn("train", options={"depends_on": ["ghost"]})], source_file="pipe.yaml")

    error = graph_error(pipeline)

    assert error.line is None
    assert str(error).startswith("pipe.yaml, step 'train', field 'depends_on': ")


def test_cycle_error_is_located_at_its_first_step() -> None:
    a = fn("a", options={"depends_on": ["a"]})

    error = graph_error(Pipeline("p", steps=[a], source_file="pipe.yaml", locations={("a", None): 7}))

    assert type(error) is PipelineGraphError
    assert str(error) == "pipe.yaml:7, step 'a': the steps form a cycle: a -> a"


def test_construction_errors_are_located_too() -> None:
    with pytest.raises(SpecError) as duplicate_parameter:
        Pipeline(
            "p",
            parameters=[ParameterString("Bucket"), ParameterString("Bucket")],
            source_file="pipe.yaml",
            locations={(None, "parameters"): 3},
        )
    with pytest.raises(PipelineGraphError) as duplicate_step:
        Pipeline("p", steps=[fn("a"), fn("a")], source_file="pipe.yaml", locations={("a", "name"): 30})
    with pytest.raises(SpecError) as bad_name:
        Pipeline("bad name", source_file="pipe.yaml", locations={(None, "name"): 1})

    assert str(duplicate_parameter.value).startswith("pipe.yaml:3, field 'parameters.Bucket': ")
    assert str(duplicate_step.value) == "pipe.yaml:30, step 'a', field 'name': duplicate step name"
    assert str(bad_name.value).startswith("pipe.yaml:1, field 'name': invalid pipeline name 'bad name'")


def test_missing_script_error_is_located(tmp_path: Path) -> None:
    pipeline = Pipeline(
        "p",
        steps=[evaluate_step()],
        base_dir=tmp_path,
        source_file="pipe.yaml",
        locations={("evaluate", "code"): 42},
    )

    with pytest.raises(
        SpecError, match=r"^pipe\.yaml:42, step 'evaluate', field 'code': script file not found"
    ):
        pipeline.validate()


# -- parameters and digests of the pipeline --------------------------------------------------------


def test_pipeline_resolves_its_parameters() -> None:
    pipeline = abalone()

    assert pipeline.resolve_parameters() == {"MaxDepth": 5, "MseThreshold": 6.0}
    assert pipeline.resolve_parameters({"MaxDepth": 8}) == {"MaxDepth": 8, "MseThreshold": 6.0}
    with pytest.raises(ParameterValidationError, match="unknown parameter"):
        pipeline.resolve_parameters({"Depth": 8})


def test_step_digests_has_one_digest_per_step() -> None:
    pipeline = abalone()

    digests = pipeline.step_digests()

    assert list(digests) == list(pipeline.steps)
    assert digests == {name: step.digest() for name, step in pipeline.steps.items()}
    assert len(set(digests.values())) == len(digests)


def test_step_digests_change_only_for_the_changed_step() -> None:
    def pipeline(rate: float) -> Pipeline:
        prep = fn("prep")
        return Pipeline("p", steps=[prep, fn("train", data=prep.output("result"), rate=rate)])

    before, after = pipeline(0.1).step_digests(), pipeline(0.2).step_digests()

    assert before["prep"] == after["prep"]
    assert before["train"] != after["train"]


def test_step_digests_follow_script_content(tmp_path: Path) -> None:
    script = tmp_path / "evaluate.py"
    script.write_text("print(1)\n")
    pipeline = Pipeline("p", steps=[fn("other"), evaluate_step()], base_dir=tmp_path)
    before = pipeline.step_digests()

    script.write_text("print(2)\n")
    after = pipeline.step_digests()

    assert before["other"] == after["other"]
    assert before["evaluate"] != after["evaluate"]


def test_repr() -> None:
    assert repr(Pipeline("p", steps=[fn("a"), fn("b")])) == "Pipeline(name='p', steps=['a', 'b'])"
