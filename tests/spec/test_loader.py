"""The YAML front-end: the spec format, expressions and conditions, and errors naming file, step, field, line.

Error cases mark the line the error must point at with ``# <-`` in the spec itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import PipelineGraphError, SpecError
from airflow_provider_mlpipe.model import (
    BinaryOperation,
    ConditionAnd,
    ConditionEquals,
    ConditionGreaterThan,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionNot,
    ConditionNotEquals,
    ConditionOr,
    ConditionStep,
    ExecutionVariable,
    FailStep,
    FunctionStep,
    Join,
    JsonGet,
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    Pipeline,
    ProcessingStep,
    RegisterModel,
    RetryPolicy,
    StepOutput,
    TrainingStep,
)
from airflow_provider_mlpipe.model.expressions import to_canonical
from airflow_provider_mlpipe.spec import (
    discover_spec_files,
    load_pipeline_file,
    load_pipeline_text,
    peek_pipeline_name,
)

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
SPEC = "spec.pipeline.yaml"


# -- helpers ------------------------------------------------------------------------------------
def write(folder: Path, text: str, name: str = SPEC) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def marked_line(path: Path) -> int:
    marked = [number for number, line in enumerate(path.read_text().splitlines(), 1) if "# <-" in line]
    assert len(marked) == 1, "a test spec marks exactly one line with '# <-'"
    return marked[0]


def load_error(path: Path, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_pipeline_file(path, **kwargs)
    return caught.value


def assert_points_at(
    error: SpecError, path: Path, *, step: str | None, field: str | None, words: tuple[str, ...] = ()
) -> None:
    """The error names the spec file and the marked line, the step and the field, in its message too."""
    line = marked_line(path)
    assert (error.file, error.line, error.step, error.field) == (str(path), line, step, field), str(error)
    message = str(error)
    assert f"{path}:{line}" in message
    if step is not None:
        assert f"step '{step}'" in message
    if field is not None:
        assert f"field '{field}'" in message
    for word in words:
        assert word in message, message


class Context:
    """The run-time values an expression reads, without a runner."""

    def __init__(self, parameters: dict[str, Any], files: dict[tuple[str, str], Any] | None = None) -> None:
        self.parameters = parameters
        self.files = files or {}

    def parameter(self, name: str) -> Any:
        return self.parameters[name]

    def step_output(self, step_name: str, output_name: str) -> Any:
        return f"<{step_name}.{output_name}>"

    def property_file(self, step_name: str, property_file: str) -> Any:
        return self.files[(step_name, property_file)]

    def execution_variable(self, name: str) -> Any:
        return {"pipeline_name": "t", "execution_id": "run-1", "start_datetime": "2024-01-01T00:00:00"}[name]


# -- the examples load --------------------------------------------------------------------------
def test_the_abalone_example_loads_with_its_steps_parameters_and_graph():
    pipeline = load_pipeline_file(DAGS / "abalone.pipeline.yaml")

    assert pipeline.name == "abalone"
    assert pipeline.source_file == str(DAGS / "abalone.pipeline.yaml")
    assert pipeline.base_dir == DAGS
    assert pipeline.tags == ["example", "abalone"]
    assert {name: type(p) for name, p in pipeline.parameters.items()} == {
        "InputData": ParameterString,
        "TrainFraction": ParameterFloat,
        "MaxDepth": ParameterInteger,
        "Eta": ParameterFloat,
        "NumRound": ParameterInteger,
        "MseThreshold": ParameterFloat,
        "ModelApprovalStatus": ParameterString,
    }
    assert pipeline.parameters["MaxDepth"].default_value == 5
    assert pipeline.parameters["ModelApprovalStatus"].enum_values == [
        "PendingManualApproval",
        "Approved",
        "Rejected",
    ]
    assert {name: step.kind for name, step in pipeline.steps.items()} == {
        "Preprocess": "processing",
        "Train": "training",
        "Evaluate": "processing",
        "CheckMse": "condition",
        "RegisterModel": "register_model",
        "FailOnMse": "fail",
    }
    assert pipeline.upstream() == {
        "Preprocess": set(),
        "Train": {"Preprocess"},
        "Evaluate": {"Train", "Preprocess"},
        "CheckMse": {"Evaluate"},
        "RegisterModel": {"Train", "Evaluate", "CheckMse"},
        "FailOnMse": {"Evaluate", "CheckMse"},
    }
    preprocess = pipeline.steps["Preprocess"]
    assert isinstance(preprocess, ProcessingStep)
    assert preprocess.job_arguments == ["--train-fraction", pipeline.parameters["TrainFraction"]]
    assert preprocess.processing_inputs[0].source is pipeline.parameters["InputData"]
    assert pipeline.steps["Train"].retry_policy == RetryPolicy(max_attempts=2, interval_seconds=5)
    check = pipeline.steps["CheckMse"]
    assert isinstance(check, ConditionStep)
    assert (check.if_steps, check.else_steps) == (["RegisterModel"], ["FailOnMse"])


def test_the_readme_example_loads():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## A pipeline in YAML.*?```yaml\n(.*?)```", readme, re.S)
    assert block is not None
    pipeline = load_pipeline_text(block.group(1), file="README.md", base_dir=DAGS)
    assert list(pipeline.steps) == [
        "Preprocess",
        "Train",
        "Evaluate",
        "CheckMse",
        "RegisterModel",
        "FailOnMse",
    ]
    assert pipeline.upstream()["RegisterModel"] == {"Train", "CheckMse"}


def test_the_benchmark_specs_load_and_yes_no_stay_step_names(tmp_path: Path):
    module_spec = importlib.util.spec_from_file_location("make_specs", REPO / "bench" / "make_specs.py")
    assert module_spec is not None and module_spec.loader is not None
    make_specs = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(make_specs)

    paths = make_specs.write_specs(tmp_path, pipelines=3, steps=8)
    pipelines = [load_pipeline_file(path) for path in paths]

    assert [p.name for p in pipelines] == ["bench_000", "bench_001", "bench_002"]
    # YAML 1.1 would read `yes` and `no` as booleans; the spec reads them as the names they are.
    check = pipelines[0].steps["check"]
    assert isinstance(check, ConditionStep)
    assert (check.if_steps, check.else_steps) == (["yes"], ["no"])
    assert pipelines[0].upstream()["rejoin"] == {"yes", "no"}
    assert [peek_pipeline_name(path) for path in paths] == [p.name for p in pipelines]


FACTORY_SPEC = """\
name: {name}
parameters:
  - {{name: Depth, type: Integer, default: 3}}
steps:
  - {{name: First, type: function, function: "json:dumps", arguments: {{obj: {{param: Depth}}}}}}
  - {{name: Second, type: function, function: "json:loads", arguments: {{s: {{step: First, output: result}}}}}}
"""


def test_the_factory_test_spec_loads_and_its_broken_variant_points_at_line_6(tmp_path: Path):
    good = load_pipeline_file(write(tmp_path, FACTORY_SPEC.format(name="good"), "good.pipeline.yaml"))
    assert good.upstream() == {"First": set(), "Second": {"First"}}
    first = good.steps["First"]
    assert isinstance(first, FunctionStep)
    assert first.arguments == {"obj": good.parameters["Depth"]}
    assert first.outputs == ["result"]

    broken = FACTORY_SPEC.format(name="broken").replace("output: result", "output: nothing")
    error = load_error(write(tmp_path, broken, "broken.pipeline.yaml"))
    message = str(error)
    assert "broken.pipeline.yaml:6" in message
    assert "'Second'" in message and "arguments.s" in message and "'nothing'" in message


FULL_SPEC = """
name: full
description: every key of the spec format
tags: [a, b]
artifact_store: /tmp/store
parameters:
  - {name: Depth, type: Integer, default: 3, description: tree depth}
  - {name: Rate, type: Float, default: 1}
  - {name: Mode, type: String, default: fast, enum: [fast, slow]}
  - {name: Flag, type: Boolean, default: false}
  - {name: Needed, type: String}
steps:
  - name: Prepare
    type: processing
    display_name: Prepare the data
    description: splits the data
    code: prepare.py
    inputs: {raw: data/raw.csv, mode: {param: Mode}}
    outputs: [train, test]
    arguments: [--depth, {param: Depth}]
    env: {MODE: {param: Mode}, LEVEL: 2}
    command: [python3, -u]
    property_files: [{name: Stats, output: train, path: stats/summary.json}]
    retry: {max_attempts: 3, interval_seconds: 2, backoff_rate: 1.5, max_interval_seconds: 60}
  - name: Fit
    type: training
    function: "my_package.training:fit"
    hyperparameters: {depth: {mul: [{param: Depth}, 2]}, rate: {param: Rate}}
    inputs: {train: {step: Prepare, output: train}}
    env: {SEED: 1}
  - name: Script
    type: training
    code: train.py
    command: [python3]
    inputs: {train: {step: Prepare, output: train}}
  - name: Summarise
    type: function
    function: "json:dumps"
    arguments: {obj: {json_get: {step: Prepare, property_file: Stats, path: rows}}}
    outputs: [text]
    allow_pickle: true
    depends_on: [Script]
  - name: Check
    type: condition
    conditions:
      - {ge: [{json_get: {step: Prepare, property_file: Stats, path: rows}}, 10]}
      - {eq: [{param: Flag}, false]}
    if_steps: [Register]
    else_steps: [Stop]
  - name: Register
    type: register_model
    model_data: {step: Fit, output: model}
    model_package_group_name: {join: {on: "-", values: [group, {param: Mode}]}}
    approval_status: Approved
    model_metrics: {step: Fit, output: metrics}
    metadata: {run: {execution: execution_id}, note: plain}
    description: the model
  - name: Stop
    type: fail
    error_message: {join: {on: " ", values: [too few rows, {execution: pipeline_name}]}}
"""


def test_every_key_of_every_step_type_reaches_the_model(tmp_path: Path):
    (tmp_path / "prepare.py").write_text("")
    (tmp_path / "train.py").write_text("")
    pipeline = load_pipeline_file(write(tmp_path, FULL_SPEC))
    params = pipeline.parameters

    assert (pipeline.description, pipeline.tags, pipeline.artifact_store) == (
        "every key of the spec format",
        ["a", "b"],
        "/tmp/store",
    )
    assert params["Rate"].default_value == 1.0 and isinstance(params["Rate"].default_value, float)
    assert params["Mode"].enum_values == ["fast", "slow"]
    assert isinstance(params["Flag"], ParameterBoolean) and params["Flag"].default_value is False
    assert params["Needed"].required
    assert params["Depth"].description == "tree depth"

    prepare = pipeline.steps["Prepare"]
    assert isinstance(prepare, ProcessingStep)
    assert (prepare.display_name, prepare.description, prepare.code) == (
        "Prepare the data",
        "splits the data",
        "prepare.py",
    )
    assert [(item.input_name, item.source) for item in prepare.processing_inputs] == [
        ("raw", "data/raw.csv"),
        ("mode", params["Mode"]),
    ]
    assert prepare.output_names() == ["train", "test"]
    assert prepare.job_arguments == ["--depth", params["Depth"]]
    assert prepare.env == {"MODE": params["Mode"], "LEVEL": 2}
    assert prepare.command == ["python3", "-u"]
    assert [item.to_dict() for item in prepare.property_files()] == [
        {"name": "Stats", "output_name": "train", "path": "stats/summary.json"}
    ]
    assert prepare.retry_policy == RetryPolicy(3, 2, 1.5, 60)
    assert prepare.code_files() == [tmp_path / "prepare.py"]

    fit = pipeline.steps["Fit"]
    assert isinstance(fit, TrainingStep)
    assert (fit.function, fit.code, fit.env) == ("my_package.training:fit", None, {"SEED": 1})
    assert to_canonical(fit.hyperparameters) == {
        "depth": {"mul": [{"param": "Depth"}, 2]},
        "rate": {"param": "Rate"},
    }
    assert to_canonical(fit.channels) == {"train": {"step": "Prepare", "output": "train"}}
    script = pipeline.steps["Script"]
    assert isinstance(script, TrainingStep) and (script.code, script.command) == ("train.py", ["python3"])

    summarise = pipeline.steps["Summarise"]
    assert isinstance(summarise, FunctionStep)
    assert (summarise.outputs, summarise.allow_pickle, summarise.depends_on) == (["text"], True, ["Script"])
    assert isinstance(summarise.arguments["obj"], JsonGet)

    check = pipeline.steps["Check"]
    assert isinstance(check, ConditionStep)
    assert [c.to_dict() for c in check.conditions] == [
        {"ge": [{"json_get": {"step": "Prepare", "property_file": "Stats", "path": "rows"}}, 10]},
        {"eq": [{"param": "Flag"}, False]},
    ]

    register = pipeline.steps["Register"]
    assert isinstance(register, RegisterModel)
    assert register.approval_status == "Approved" and register.description == "the model"
    assert register.model_package_group_name.evaluate(Context({"Mode": "slow"})) == "group-slow"
    assert to_canonical(register.metadata) == {"run": {"execution": "execution_id"}, "note": "plain"}

    stop = pipeline.steps["Stop"]
    assert isinstance(stop, FailStep)
    assert stop.error_message.evaluate(Context({})) == "too few rows t"

    assert pipeline.upstream() == {
        "Prepare": set(),
        "Fit": {"Prepare"},
        "Script": {"Prepare"},
        "Summarise": {"Prepare", "Script"},
        "Check": {"Prepare"},
        "Register": {"Fit", "Check"},
        "Stop": {"Check"},
    }


def test_relative_scripts_are_found_next_to_the_spec_not_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "dags"
    path = write(folder, "name: t\nsteps:\n  - {name: A, type: processing, code: scripts/a.py}\n")
    write(folder, "print('a')\n", "scripts/a.py")
    monkeypatch.chdir(tmp_path)
    pipeline = load_pipeline_file(Path("dags") / SPEC)
    assert pipeline.base_dir == path.parent
    assert pipeline.steps["A"].code_files() == [path.parent / "scripts" / "a.py"]


def test_merge_keys_share_settings_between_steps(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - &base {name: A, type: function, function: "json:dumps", retry: {max_attempts: 3}}
          - {<<: *base, name: B}
        """,
    )
    pipeline = load_pipeline_file(path)
    assert pipeline.steps["B"].retry_policy == RetryPolicy(max_attempts=3)
    assert isinstance(pipeline.steps["B"], FunctionStep)


# -- expressions --------------------------------------------------------------------------------
EXPRESSION_SPEC = """
name: t
parameters:
  - {{name: Depth, type: Integer, default: 3}}
  - {{name: Rate, type: Float, default: 0.5}}
  - {{name: Mode, type: String, default: fast}}
steps:
  - {{name: First, type: function, function: "json:dumps", outputs: [result, extra]}}
  - name: Report
    type: processing
    code: report.py
    outputs: [evaluation]
    property_files: [{{name: Metrics, output: evaluation, path: metrics.json}}]
  - name: Use
    type: function
    function: "json:dumps"
    arguments:
      x: {value}
"""


def load_value(tmp_path: Path, value: str) -> tuple[Any, Pipeline]:
    """Load a spec whose step ``Use`` has argument ``x: value``; return the parsed value."""
    path = write(tmp_path, EXPRESSION_SPEC.format(value=value))
    pipeline = load_pipeline_file(path, check_files=False)
    step = pipeline.steps["Use"]
    assert isinstance(step, FunctionStep)
    return step.arguments["x"], pipeline


EXPRESSIONS = [
    pytest.param("{param: Depth}", Parameter, {"param": "Depth"}, id="param"),
    pytest.param(
        "{step: First, output: extra}", StepOutput, {"step": "First", "output": "extra"}, id="step-output"
    ),
    pytest.param(
        "{json_get: {step: Report, property_file: Metrics, path: \"a.b[0]['c d']\"}}",
        JsonGet,
        {"json_get": {"step": "Report", "property_file": "Metrics", "path": "a.b[0]['c d']"}},
        id="json-get",
    ),
    pytest.param(
        "{json_get: {step: Report, property_file: Metrics}}",
        JsonGet,
        {"json_get": {"step": "Report", "property_file": "Metrics", "path": ""}},
        id="json-get-whole-file",
    ),
    pytest.param(
        "{join: {on: /, values: [s3://bucket, {param: Mode}, {step: First, output: result}]}}",
        Join,
        {
            "join": {
                "on": "/",
                "values": ["s3://bucket", {"param": "Mode"}, {"step": "First", "output": "result"}],
            }
        },
        id="join",
    ),
    pytest.param(
        "{join: {values: [a, b]}}", Join, {"join": {"on": "", "values": ["a", "b"]}}, id="join-no-separator"
    ),
    *(
        pytest.param(f"{{execution: {name}}}", ExecutionVariable, {"execution": name}, id=f"execution-{name}")
        for name in ExecutionVariable.NAMES
    ),
    *(
        pytest.param(
            f"{{{name}: [{{param: Depth}}, 2]}}", BinaryOperation, {name: [{"param": "Depth"}, 2]}, id=name
        )
        for name in ("add", "sub", "mul", "div", "floordiv", "mod")
    ),
    pytest.param(
        "{mul: [{add: [{param: Depth}, 1]}, {param: Rate}]}",
        BinaryOperation,
        {"mul": [{"add": [{"param": "Depth"}, 1]}, {"param": "Rate"}]},
        id="nested-arithmetic",
    ),
]


@pytest.mark.parametrize(("text", "kind", "canonical"), EXPRESSIONS)
def test_every_expression_form_parses_and_round_trips(tmp_path: Path, text: str, kind: type, canonical: Any):
    value, pipeline = load_value(tmp_path, text)
    assert isinstance(value, kind)
    assert value.to_dict() == canonical
    # to_dict() is the YAML syntax: reading it back gives the same expression.
    again, _ = load_value(tmp_path, json.dumps(value.to_dict()))
    assert again.to_dict() == value.to_dict()
    for reference in value.references():
        if isinstance(reference, Parameter):
            assert reference is pipeline.parameters[reference.name]  # the declared parameter, not a copy


def test_expressions_evaluate_to_their_values(tmp_path: Path):
    context = Context(
        {"Depth": 3, "Rate": 0.5, "Mode": "fast"}, {("Report", "Metrics"): {"a": {"b": [{"c d": 7}]}}}
    )
    cases = {
        "{mul: [{add: [{param: Depth}, 1]}, {param: Rate}]}": 2.0,
        "{floordiv: [7, {param: Depth}]}": 2,
        "{mod: [7, {param: Depth}]}": 1,
        "{join: {on: '-', values: [{param: Mode}, {param: Depth}, {execution: execution_id}]}}": "fast-3-run-1",
        "{json_get: {step: Report, property_file: Metrics, path: \"a.b[0]['c d']\"}}": 7,
    }
    for text, expected in cases.items():
        value, _ = load_value(tmp_path, text)
        assert value.evaluate(context) == expected, text


def test_plain_mappings_and_lists_hold_expressions_and_literal_escapes_them(tmp_path: Path):
    value, pipeline = load_value(
        tmp_path, "{a: {param: Depth}, b: [1, {step: First, output: result}], c: {d: null}}"
    )
    assert value == {"a": pipeline.parameters["Depth"], "b": [1, value["b"][1]], "c": {"d": None}}
    assert isinstance(value["b"][1], StepOutput)
    assert type(value) is dict and type(value["b"]) is list  # no line bookkeeping leaks into the model
    assert pipeline.upstream()["Use"] == {"First"}

    literal, pipeline = load_value(tmp_path, "{literal: {param: Depth, step: [1]}}")
    assert literal == {"param": "Depth", "step": [1]}
    assert type(literal) is dict and type(literal["step"]) is list
    assert pipeline.upstream()["Use"] == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("0.25", 0.25),
        ("text", "text"),
        ("'3'", "3"),
        ("true", True),
        ("null", None),
        ("[1, two]", [1, "two"]),
    ],
)
def test_literals_stay_literals(tmp_path: Path, text: str, expected: Any):
    value, _ = load_value(tmp_path, text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n"])
def test_yaml_1_1_booleans_are_strings(tmp_path: Path, word: str):
    value, _ = load_value(tmp_path, word)
    assert value == word


def test_on_is_the_join_separator_not_a_boolean(tmp_path: Path):
    value, _ = load_value(tmp_path, '{join: {on: " ", values: [a, b]}}')
    assert isinstance(value, Join) and value.on == " "


# -- conditions ---------------------------------------------------------------------------------
CONDITION_SPEC = """
name: t
parameters:
  - {{name: Depth, type: Integer, default: 3}}
  - {{name: Mode, type: String, default: fast}}
steps:
  - name: Check
    type: condition
    conditions:
      - {condition}
"""

CONDITIONS = [
    *(
        pytest.param({keyword: [{"param": "Depth"}, 3]}, kind, id=keyword)
        for keyword, kind in {
            "eq": ConditionEquals,
            "ne": ConditionNotEquals,
            "lt": ConditionLessThan,
            "le": ConditionLessThanOrEqualTo,
            "gt": ConditionGreaterThan,
            "ge": ConditionGreaterThanOrEqualTo,
        }.items()
    ),
    pytest.param({"in": [{"param": "Mode"}, ["fast", {"param": "Mode"}]]}, ConditionIn, id="in"),
    pytest.param({"not": {"eq": [{"param": "Mode"}, "slow"]}}, ConditionNot, id="not"),
    pytest.param({"and": [{"gt": [{"param": "Depth"}, 1]}]}, ConditionAnd, id="and"),
    pytest.param(
        {
            "or": [
                {"and": [{"gt": [{"param": "Depth"}, 1]}, {"not": {"in": [{"param": "Mode"}, ["slow"]]}}]},
                {"not": {"or": [{"le": [{"add": [{"param": "Depth"}, 1]}, 2]}]}},
            ]
        },
        ConditionOr,
        id="nested",
    ),
]


@pytest.mark.parametrize(("canonical", "kind"), CONDITIONS)
def test_every_condition_form_parses_and_round_trips(tmp_path: Path, canonical: Any, kind: type):
    pipeline = load_pipeline_file(write(tmp_path, CONDITION_SPEC.format(condition=json.dumps(canonical))))
    step = pipeline.steps["Check"]
    assert isinstance(step, ConditionStep)
    (condition,) = step.conditions
    assert isinstance(condition, kind)
    assert condition.to_dict() == canonical
    again = load_pipeline_file(
        write(tmp_path, CONDITION_SPEC.format(condition=json.dumps(condition.to_dict())))
    )
    again_step = again.steps["Check"]
    assert isinstance(again_step, ConditionStep)
    assert again_step.conditions[0].to_dict() == canonical


def test_nested_conditions_evaluate(tmp_path: Path):
    path = write(tmp_path, CONDITION_SPEC.format(condition=json.dumps(CONDITIONS[-1].values[0])))
    step = load_pipeline_file(path).steps["Check"]
    assert isinstance(step, ConditionStep)
    (condition,) = step.conditions
    assert condition.evaluate(Context({"Depth": 3, "Mode": "fast"})) is True
    assert condition.evaluate(Context({"Depth": 3, "Mode": "slow"})) is True  # not (Depth + 1 <= 2)
    assert condition.evaluate(Context({"Depth": 1, "Mode": "slow"})) is False


# -- bad input: the headline cases ---------------------------------------------------------------
def test_a_cycle_names_a_step_of_it_and_its_line(tmp_path: Path):
    text = """
        name: t
        steps:
          - name: A
            type: function
            function: "json:dumps"
            arguments: {x: {step: B, output: result}}
          - name: B
            type: function
            function: "json:dumps"
            depends_on: [A]
        """
    path = write(tmp_path, text)
    error = load_error(path)
    assert isinstance(error, PipelineGraphError)
    assert error.step in ("A", "B")
    assert error.line == {"A": 3, "B": 7}[error.step]
    assert f"{path}:{error.line}" in str(error)
    assert "cycle" in str(error)


def test_a_reference_to_an_unknown_step(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - name: A
            type: function
            function: "json:dumps"
            arguments:
              x: {step: Nope, output: result}  # <-
        """,
    )
    error = load_error(path)
    assert isinstance(error, PipelineGraphError)
    assert_points_at(error, path, step="A", field="arguments.x", words=("'Nope'",))


@pytest.mark.parametrize("key", ["depends_on", "if_steps", "else_steps"])
def test_an_unknown_step_in_depends_on_or_a_branch(tmp_path: Path, key: str):
    path = write(
        tmp_path,
        f"""
        name: t
        steps:
          - name: A
            type: condition
            conditions: [{{eq: [1, 1]}}]
            {key}: [Nope]  # <-
        """,
    )
    assert_points_at(load_error(path), path, step="A", field=key, words=("'Nope'",))


def test_a_reference_to_an_unknown_output(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - {name: A, type: processing, code: a.py, outputs: [data]}
          - name: B
            type: processing
            code: b.py
            inputs:
              raw: {step: A, output: date}  # <-
        """,
    )
    error = load_error(path, check_files=False)
    assert_points_at(error, path, step="B", field="inputs.raw", words=("'date'", "it has: data"))


def test_a_processing_argument_error_names_the_spec_key_arguments(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - {name: A, type: function, function: "json:dumps"}
          - name: B
            type: processing
            code: b.py
            arguments:
              - --input
              - {step: A, output: nothing}  # <-
        """,
    )
    assert_points_at(
        load_error(path, check_files=False), path, step="B", field="arguments[1]", words=("'nothing'",)
    )


def test_a_reference_to_an_unknown_parameter_suggests_the_close_one(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        parameters:
          - {name: Depth, type: Integer, default: 3}
        steps:
          - name: A
            type: function
            function: "json:dumps"
            arguments:
              obj: {param: Dept}  # <-
        """,
    )
    assert_points_at(
        load_error(path), path, step="A", field="arguments.obj", words=("'Dept'", "did you mean 'Depth'?")
    )


def test_an_unknown_parameter_deep_inside_a_condition(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - name: A
            type: condition
            conditions:
              - and:
                  - {eq: [1, 1]}
                  - not: {lt: [{param: Nope}, 1]}  # <-
        """,
    )
    error = load_error(path)
    assert_points_at(
        error, path, step="A", field="conditions[0].and[1].not.lt[0]", words=("'Nope'", "declared: none")
    )


def test_duplicate_step_names_point_at_the_second(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - name: A
            type: fail
          - name: B
            type: fail
          - type: fail
            name: A  # <-
        """,
    )
    error = load_error(path)
    assert isinstance(error, PipelineGraphError)
    assert_points_at(error, path, step="A", field="name", words=("duplicate step name", "line 3"))


def test_duplicate_parameters_point_at_the_second(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        parameters:
          - {name: Depth, type: Integer}
          - {name: Depth, type: Float}  # <-
        steps: [{name: A, type: fail}]
        """,
    )
    assert_points_at(
        load_error(path), path, step=None, field="parameters.Depth", words=("duplicate parameter",)
    )


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        ('{name: Depth, type: Integer, default: "3"}  # <-', "parameters.Depth.default"),
        ("{name: Depth, type: Integer, default: 2.5}  # <-", "parameters.Depth.default"),
        ("{name: Flag, type: Boolean, default: yes}  # <-", "parameters.Flag.default"),
        ("{name: Mode, type: String, default: 3}  # <-", "parameters.Mode.default"),
        ("{name: Mode, type: String, enum: [a, 1]}  # <-", "parameters.Mode.enum value"),
    ],
)
def test_a_parameter_value_of_the_wrong_type(tmp_path: Path, parameter: str, field: str):
    path = write(tmp_path, f"name: t\nparameters:\n  - {parameter}\nsteps: [{{name: A, type: fail}}]\n")
    assert_points_at(load_error(path), path, step=None, field=field, words=("expects",))


def test_a_wrong_parameter_default_on_its_own_line(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        parameters:
          - name: Depth
            type: Integer
            default: three  # <-
        steps: [{name: A, type: fail}]
        """,
    )
    assert_points_at(load_error(path), path, step=None, field="parameters.Depth.default", words=("'three'",))


def test_a_missing_script_file(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        steps:
          - name: A
            type: processing
            code: scripts/missing.py  # <-
        """,
    )
    assert_points_at(
        load_error(path), path, step="A", field="code", words=("script file not found", "missing.py")
    )
    assert load_pipeline_file(path, check_files=False).steps["A"].code_files() == [
        tmp_path / "scripts/missing.py"
    ]


@pytest.mark.parametrize("kind", ["function", "training"])
def test_a_missing_function_file_names_the_function_key(tmp_path: Path, kind: str):
    path = write(
        tmp_path,
        f"""
        name: t
        steps:
          - name: A
            type: {kind}
            function: helpers/fit.py:main  # <-
        """,
    )
    assert_points_at(
        load_error(path), path, step="A", field="function", words=("script file not found", "fit.py")
    )
    write(tmp_path, "def main(): ...\n", "helpers/fit.py")
    assert load_pipeline_file(path).steps["A"].code_files() == [tmp_path / "helpers/fit.py"]


def test_the_cli_example_of_an_unknown_key(tmp_path: Path):
    path = write(
        tmp_path, "name: bad\nsteps:\n  - {name: A, type: function, function: 'json:dumps', colour: red}\n"
    )
    error = load_error(path)
    assert f"{path}:3" in str(error) and "'A'" in str(error) and "colour" in str(error)


@pytest.mark.parametrize(
    ("text", "step", "field", "suggestion"),
    [
        ("name: t\nstpes: []  # <-\n", None, "stpes", "steps"),
        (
            "name: t\nsteps:\n  - {name: A, type: function, function: 'a:b', argments: {}}  # <-\n",
            "A",
            "argments",
            "arguments",
        ),
        (
            "name: t\nsteps:\n  - {name: A, type: fail, retry: {max_attempt: 2}}  # <-\n",
            "A",
            "retry.max_attempt",
            "max_attempts",
        ),
        (
            "name: t\nparameters:\n  - {name: P, type: Integer, defualt: 2}  # <-\nsteps: []\n",
            None,
            "parameters.P.defualt",
            "default",
        ),
        (
            "name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    outputs: [o]\n"
            "    property_files: [{name: F, output: o, pth: x.json}]  # <-\n",
            "A",
            "property_files[0].pth",
            "path",
        ),
        (
            "name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {json_get: {step: B, property_file: F, paht: x}}  # <-\n",
            "A",
            "error_message.json_get.paht",
            "path",
        ),
    ],
)
def test_an_unknown_key_is_named_with_a_suggestion(
    tmp_path: Path, text: str, step: str | None, field: str, suggestion: str
):
    path = write(tmp_path, text)
    error = load_error(path, check_files=False)
    assert_points_at(error, path, step=step, field=field, words=(f"did you mean '{suggestion}'?",))


def test_an_unquoted_comma_in_a_flow_mapping_is_explained(tmp_path: Path):
    path = write(
        tmp_path,
        """
        name: t
        parameters:
          - {name: Data, type: String, default: x.csv, description: a file (path, or URL)}  # <-
        steps: [{name: A, type: fail}]
        """,
    )
    error = load_error(path)
    assert_points_at(error, path, step=None, field="parameters.Data.or URL)", words=("quote that value",))


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("name: invalid\nsteps: [\n", 3, 1, ("did not find expected node content",)),
        ("name: t\nsteps:\n  - name: A\n   type: fail\n", 4, 4, ("while parsing a block collection",)),
        ("name: t\nsteps:\n\t- {name: A, type: fail}\n", 3, 1, ("cannot start any token",)),
        ("name: t\nname: u\nsteps: []\n", 2, 1, ("duplicate key 'name'", "first on line 1")),
        ("name: t\nsteps: *nowhere\n", 2, 8, ("undefined alias",)),
        ("name: t\n---\nname: u\n", 2, 1, ("single document",)),
        ("name: t\nsteps:\n  - {name: A, type: function\n    function: x}\n", 4, 13, ("flow mapping",)),
    ],
)
def test_invalid_yaml_names_the_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, words: tuple[str, ...]
):
    path = write(tmp_path, text)
    error = load_error(path)
    # The column PyYAML reports (1-based, as in its own messages): file:line:column, as compilers print.
    assert (error.file, error.line, error.column) == (str(path), line, column)
    assert f"{path}:{line}:{column}: invalid YAML" in str(error)
    for word in words:
        assert word in str(error)


# -- bad input: wrong types and shapes ----------------------------------------------------------
# One case per line: (spec, step, field, words in the message); the error points at the marked line.
# fmt: off
WRONG = [
    ("name: t\nsteps: {A: 1}  # <-\n", None, "steps", "expected a list, got a mapping"),
    ("name: t\nsteps:\n  - A  # <-\n", None, "steps[0]", "expected a mapping, got a string 'A'"),
    ("name: t\nsteps:\n  - {type: fail}  # <-\n", None, "steps[0].name", "needs 'name'"),
    ("name: t\nsteps:\n  - {name: 1, type: fail}  # <-\n", None, "steps[0].name", "must be a string"),
    ("name: t\nsteps:\n  - {name: A}  # <-\n", "A", "type", "needs 'type'"),
    ("name: t\nsteps:\n  - {name: A, type: proccessing}  # <-\n", "A", "type", "did you mean 'processing'?"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    outputs: result  # <-\n", "A", "outputs", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    outputs: [result, 2]  # <-\n", "A", "outputs[1]", "got an integer 2"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    outputs: [a/b]  # <-\n", "A", "outputs[0]", "invalid name 'a/b'"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry: {max_attempts: two}  # <-\n", "A", "retry.max_attempts", "expected an integer"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry:\n      interval_seconds: soon  # <-\n", "A", "retry.interval_seconds", "expected a number"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry: 3  # <-\n", "A", "retry", "expected a mapping"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry: {backoff_rate: 0.5}  # <-\n", "A", "retry.backoff_rate", "backoff_rate must be >= 1"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    arguments: [1, 2]  # <-\n", "A", "arguments", "expected a mapping"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    arguments: {1: x}  # <-\n", "A", "arguments", "must be strings"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    depends_on: B  # <-\n", "A", "depends_on", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: a:b\n    allow_pickle: yes  # <-\n", "A", "allow_pickle", "expected true or false, got a string 'yes'"),
    ("name: t\nsteps:\n  - {name: A, type: function}  # <-\n", "A", "function", "needs 'function'"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: [json, dumps]  # <-\n", "A", "function", "expected a string"),
    ("name: t\nsteps:\n  - name: A\n    type: function\n    function: json.dumps  # <-\n", "A", "function", "'module:attribute'"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    display_name: [x]  # <-\n", "A", "display_name", "expected a string"),
    ("name: t\ntags: example  # <-\nsteps: [{name: A, type: fail}]\n", None, "tags", "expected a list"),
    ("name: t\ndescription: [a, b]  # <-\nsteps: [{name: A, type: fail}]\n", None, "description", "expected a string"),
    ("name: t\nartifact_store: 5  # <-\nsteps: [{name: A, type: fail}]\n", None, "artifact_store", "expected a string"),
    ("name: t  # <-\n", None, "steps", "needs 'steps'"),
    ("description: x  # <-\nsteps: []\n", None, "name", "needs 'name'"),
    ("name: [t]  # <-\nsteps: [{name: A, type: fail}]\n", None, "name", "invalid pipeline name"),
    ("name: t\nsteps: []  # <-\n", None, "steps", "at least one step"),
    ("name: t\nparameters: {Depth: 3}  # <-\nsteps: []\n", None, "parameters", "expected a list"),
    ("name: t\nparameters:\n  - Depth  # <-\nsteps: []\n", None, "parameters[0]", "expected a mapping"),
    ("name: t\nparameters:\n  - {type: Integer}  # <-\nsteps: []\n", None, "parameters[0].name", "needs 'name'"),
    ("name: t\nparameters:\n  - {name: Depth, default: 3}  # <-\nsteps: []\n", None, "parameters.Depth.type", "needs 'type'"),
    ("name: t\nparameters:\n  - {name: Depth, type: integer}  # <-\nsteps: []\n", None, "parameters.Depth.type", "did you mean 'Integer'?"),
    ("name: t\nparameters:\n  - {name: Depth, type: Integer, enum: 3}  # <-\nsteps: []\n", None, "parameters.Depth.enum", "expected a list"),
    ("name: t\nparameters:\n  - {name: 2x, type: Integer}  # <-\nsteps: []\n", None, "parameters", "invalid parameter name"),
    ("name: t\nsteps:\n  - {name: A, type: processing}  # <-\n", "A", "code", "needs 'code'"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    inputs: {../up: data.csv}  # <-\n", "A", "inputs.../up", "invalid name"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    inputs: [data.csv]  # <-\n", "A", "inputs", "expected a mapping"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    outputs: [o]\n    property_files: [{name: M, output: o, path: ../../etc/passwd}]  # <-\n", "A", "property_files[0].path", "must stay inside output 'o'"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    property_files: [{name: M, output: nope, path: m.json}]  # <-\n", "A", "property_files", "unknown output 'nope'"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    outputs: [o]\n    property_files:\n      - {name: M, output: o, path: a.json}\n      - {name: M, output: o, path: b.json}  # <-\n", "A", "property_files[1].name", "duplicate property file"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    command: [python, 3]  # <-\n", "A", "command[1]", "expected a string"),
    ("name: t\nsteps:\n  - name: A\n    type: processing\n    code: a.py\n    env: [X]  # <-\n", "A", "env", "expected a mapping"),
    ("name: t\nsteps:\n  - name: A\n    type: training\n    code: a.py  # <-\n    function: a:b\n", "A", "code", "exactly one of 'code' and 'function'"),
    ("name: t\nsteps:\n  - {name: A, type: training}  # <-\n", "A", "code", "exactly one of 'code' and 'function'"),
    ("name: t\nsteps:\n  - name: A\n    type: training\n    code: a.py\n    inputs: {'my channel': data.csv}  # <-\n", "A", "inputs.my channel", "invalid name"),
    ("name: t\nsteps:\n  - {name: A, type: register_model, model_package_group_name: g}  # <-\n", "A", "model_data", "needs 'model_data'"),
    ("name: t\nsteps:\n  - name: A\n    type: register_model\n    model_data: s3://m\n    model_package_group_name: g\n    approval_status: Maybe  # <-\n", "A", "approval_status", "must be one of"),
    ("name: t\nsteps:\n  - name: A\n    type: register_model\n    model_data: s3://m\n    model_package_group_name: g\n    metadata: [a]  # <-\n", "A", "metadata", "expected a mapping"),
    ("name: t\nsteps:\n  - {name: A, type: condition}  # <-\n", "A", "conditions", "at least one condition"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions: {le: [1, 2]}  # <-\n", "A", "conditions", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - le: [1]  # <-\n", "A", "conditions[0].le", "expected two operands"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - le: 1  # <-\n", "A", "conditions[0].le", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - lte: [1, 2]  # <-\n", "A", "conditions[0]", "did you mean 'le'?"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - true  # <-\n", "A", "conditions[0]", "expected a condition"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - {eq: [1, 1], ne: [1, 2]}  # <-\n", "A", "conditions[0]", "one key"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - in: [a, b]  # <-\n", "A", "conditions[0].in", "[value, [choice, ...]]"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - and: []  # <-\n", "A", "conditions[0].and", "at least one condition"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions:\n      - and:\n          - {gt: [1, 0]}\n          - {not: 5}  # <-\n", "A", "conditions[0].and[1].not", "expected a condition"),
    ("name: t\nsteps:\n  - name: A\n    type: condition\n    conditions: [{eq: [1, 1]}]\n    if_steps: B  # <-\n", "A", "if_steps", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {add: [1, 2, 3]}  # <-\n", "A", "error_message.add", "expected two operands"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {join: {on: '-'}}  # <-\n", "A", "error_message.join.values", "needs 'values'"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {join: {values: x}}  # <-\n", "A", "error_message.join.values", "expected a list"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {join: {on: 1, values: []}}  # <-\n", "A", "error_message.join.on", "expected a string"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {json_get: {step: B}}  # <-\n", "A", "error_message.json_get.property_file", "needs 'property_file'"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {json_get: [B]}  # <-\n", "A", "error_message.json_get", "expected a mapping"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {json_get: {step: B, property_file: F, path: 'a..b'}}  # <-\n", "A", "error_message", "invalid JSON path"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {param: [Depth]}  # <-\n", "A", "error_message.param", "expected a string"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {execution: pipline_name}  # <-\n", "A", "error_message.execution", "did you mean 'pipeline_name'?"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {step: B}  # <-\n", "A", "error_message.output", "needs 'output'"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {step: B, outptu: x}  # <-\n", "A", "error_message.outptu", "did you mean 'output'?"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {step: [B], output: x}  # <-\n", "A", "error_message.step", "expected a string"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    error_message: {step: B, output: x, extra: 1}  # <-\n", "A", "error_message.extra", "unknown key 'extra'"),
    ("name: t\nsteps:\n  - name: A\n    type: [fail]  # <-\n", "A", "type", "expected a string"),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "step", "field", "words"), WRONG, ids=[f"{case[2]}-{index}" for index, case in enumerate(WRONG)]
)
def test_wrong_types_and_shapes_are_spec_errors(
    tmp_path: Path, text: str, step: str | None, field: str, words: str
):
    path = write(tmp_path, text)
    assert_points_at(load_error(path, check_files=False), path, step=step, field=field, words=(words,))


# -- numbers Airflow cannot take: the run would refuse them, so loading (and mlpipe validate) does --
# fmt: off
OUT_OF_RANGE = [
    ("name: t\nparameters:\n  - {name: X, type: Float, default: 1e999}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "finite number, got inf"),
    ("name: t\nparameters:\n  - {name: X, type: Float, default: 1.0e+999}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "finite number, got inf"),
    ("name: t\nparameters:\n  - {name: X, type: Float, default: -.inf}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "finite number, got -inf"),
    ("name: t\nparameters:\n  - {name: X, type: Float, default: .nan}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "finite number, got nan"),
    ("name: t\nparameters:\n  - {name: X, type: Float, default: nan}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "expects float"),
    ("name: t\nparameters:\n  - {name: X, type: Float, default: 1.0, enum: [1.0, .inf]}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.enum value", "finite number"),
    ("name: t\nparameters:\n  - {name: X, type: Integer, default: 9223372036854775808}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "must fit in 64 bits"),
    ("name: t\nparameters:\n  - {name: X, type: Integer, default: -9223372036854775809}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.default", "must fit in 64 bits"),
    ("name: t\nparameters:\n  - {name: X, type: Integer, default: 1, enum: [1, 123456789012345678901234567890]}  # <-\nsteps: [{name: A, type: fail}]\n", None, "parameters.X.enum value", "must fit in 64 bits"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry:\n      max_attempts: 123456789012345678901234567890  # <-\n", "A", "retry.max_attempts", "at most 2147483647"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry:\n      interval_seconds: 1e999  # <-\n", "A", "retry.interval_seconds", "finite number"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry:\n      backoff_rate: .nan  # <-\n", "A", "retry.backoff_rate", "finite number"),
    ("name: t\nsteps:\n  - name: A\n    type: fail\n    retry:\n      interval_seconds: 1\n      max_interval_seconds: 1e300  # <-\n", "A", "retry.max_interval_seconds", "no larger than"),
]
# fmt: on


@pytest.mark.parametrize(
    ("text", "step", "field", "words"),
    OUT_OF_RANGE,
    ids=[f"{case[2]}-{index}" for index, case in enumerate(OUT_OF_RANGE)],
)
def test_numbers_airflow_cannot_store_are_spec_errors(
    tmp_path: Path, text: str, step: str | None, field: str, words: str
):
    path = write(tmp_path, text)
    assert_points_at(load_error(path, check_files=False), path, step=step, field=field, words=(words,))


def test_exponent_numbers_are_numbers_as_in_yaml_1_2(tmp_path: Path):
    """``1e-3`` is a float (YAML 1.1 would read it as text without a dot); plain integers stay integers."""
    path = write(
        tmp_path,
        """
        name: t
        parameters:
          - {name: Rate, type: Float, default: 1e-3}
          - {name: Depth, type: Integer, default: 5}
        steps:
          - {name: A, type: function, function: "m:f", arguments: {big: 2E+5, label: 1e5x, version: "1e3"}}
        """,
    )
    pipeline = load_pipeline_file(path, check_files=False)
    assert pipeline.parameters["Rate"].default_value == 0.001
    assert (
        pipeline.parameters["Depth"].default_value == 5
        and type(pipeline.parameters["Depth"].default_value) is int
    )
    assert pipeline.steps["A"].arguments == {"big": 200000.0, "label": "1e5x", "version": "1e3"}


def test_no_mutation_of_a_valid_spec_escapes_as_a_raw_python_error():
    """Every ``key: value`` line of FULL_SPEC, given each of a set of wrong values: a SpecError with a line, or a load."""
    lines = textwrap.dedent(FULL_SPEC).lstrip("\n").splitlines()
    load_pipeline_text(
        "\n".join(lines), check_files=False
    )  # unmutated it loads, so each failure is the mutant's
    key_value = re.compile(r"^(\s*(?:- )?)([A-Za-z_]+):\s*\S")
    mutants = [
        "null",
        "[1, 2]",
        "{a: 1}",
        "7",
        "'text'",
        "true",
        "{param: Depth}",
        "{step: Fit, output: model}",
    ]
    tried = 0
    for index, line in enumerate(lines):
        match = key_value.match(line)
        if not match:
            continue
        for mutant in mutants:
            mutated = [*lines[:index], f"{match.group(1)}{match.group(2)}: {mutant}", *lines[index + 1 :]]
            tried += 1
            try:
                load_pipeline_text("\n".join(mutated), file="m.yaml", check_files=False)
            except SpecError as error:
                assert error.file == "m.yaml" and error.line is not None, (line, mutant, str(error))
    assert tried > 300


# -- safety ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object:os.PathLike {{}}",
    ],
)
def test_python_tags_are_refused(tmp_path: Path, tag: str):
    marker = tmp_path / "pwned"
    path = write(
        tmp_path,
        f"""
        name: t
        steps:
          - name: A
            type: fail
            error_message: {tag.format(marker=marker)}  # <-
        """,
    )
    error = load_error(path)
    assert (error.file, error.line) == (str(path), marked_line(path))
    assert "could not determine a constructor" in str(error) and "python/" in str(error)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name", ["../../etc", "/etc/passwd", ".hidden", "a/b", "-x", "a b", "x" * 201, "A\n"]
)
def test_step_names_that_could_leave_the_artifact_store_are_refused(tmp_path: Path, name: str):
    # A JSON string is a YAML double-quoted scalar: "A\\n" really is A and a newline.
    path = write(tmp_path, f"name: t\nsteps:\n  - name: {json.dumps(name)}  # <-\n    type: fail\n")
    assert_points_at(load_error(path), path, step=name, field="name", words=("invalid step name",))


# Nine levels of ten aliases each, in one flow list: a billion values from one line ("billion laughs").
BOMB = (
    "["
    + ", ".join(
        ["&l0 [x, x, x, x, x, x, x, x, x, x]"]
        + [f"&l{level} [{', '.join([f'*l{level - 1}'] * 10)}]" for level in range(1, 9)]
    )
    + "]"
)


@pytest.mark.parametrize(
    ("text", "step"),
    [
        (f"name: t\nsteps: [{{name: A, type: fail, error_message: {BOMB}}}]\n", "A"),
        (f"name: t\nsteps: [{{name: A, type: fail, error_message: {{literal: {BOMB}}}}}]\n", "A"),
        (
            f"name: t\nparameters: [{{name: P, type: String, enum: {BOMB}}}]\nsteps: [{{name: A, type: fail}}]\n",
            None,
        ),
    ],
    ids=["value", "literal", "parameter-enum"],
)
def test_an_alias_bomb_is_refused_quickly(tmp_path: Path, text: str, step: str | None):
    error = load_error(write(tmp_path, text))
    assert "more than 200000 values" in str(error)
    assert error.step == step


def test_an_empty_or_unreadable_spec_is_a_spec_error(tmp_path: Path):
    assert "the spec is empty" in str(load_error(write(tmp_path, "# nothing\n")))
    assert "expected a mapping, got a list" in str(load_error(write(tmp_path, "- a\n")))
    missing = tmp_path / "missing.pipeline.yaml"
    error = load_error(missing)
    assert error.file == str(missing) and "cannot read the spec" in str(error)
    binary = tmp_path / "binary.pipeline.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    assert "not UTF-8" in str(load_error(binary))


def test_load_pipeline_text_names_the_given_file():
    with pytest.raises(SpecError) as caught:
        load_pipeline_text("name: t\nsteps:\n  - {name: A, type: nope}\n", file="inline.yaml")
    assert str(caught.value).startswith("inline.yaml:3, step 'A', field 'type'")
    pipeline = load_pipeline_text("name: t\nsteps: [{name: A, type: fail}]\n")
    assert (pipeline.source_file, pipeline.base_dir) == ("<string>", None)


# -- peek_pipeline_name and discover_spec_files ------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: abalone\nsteps: []\n", "abalone"),
        ("# a comment\n---\nname: 'quoted'  # trailing comment\n", "quoted"),
        ('name: "double"\n', "double"),
        ("name : spaced\n", "spaced"),
        ("name: crlf\r\nsteps: []\r\n", "crlf"),
        ("description: x\n  name: nested\nname: top\n", "top"),
        ("steps:\n  - name: A\n", None),
        ("{name: flow, steps: []}\n", None),
        ("name:\n  block\n", None),
        ("name: a#b\n", None),
        ("name: [x]\n", None),
        ("name: *alias\n", None),
        ("name: 'it''s'\n", None),
        ("", None),
    ],
)
def test_peek_pipeline_name_reads_only_simple_top_level_names(
    tmp_path: Path, text: str, expected: str | None
):
    path = tmp_path / SPEC
    path.write_bytes(text.encode())
    assert peek_pipeline_name(path) == expected


def test_peek_pipeline_name_agrees_with_the_full_parse_and_survives_odd_files(tmp_path: Path):
    for spec in (
        write(tmp_path, FULL_SPEC, "full.pipeline.yaml"),
        write(tmp_path, FACTORY_SPEC.format(name="f")),
    ):
        assert peek_pipeline_name(spec) == load_pipeline_text(spec.read_text(), check_files=False).name
    with_bom = tmp_path / "bom.pipeline.yaml"
    with_bom.write_bytes("name: bom\n".encode("utf-8-sig"))
    assert peek_pipeline_name(with_bom) == "bom"
    assert peek_pipeline_name(tmp_path / "missing.pipeline.yaml") is None
    assert peek_pipeline_name(tmp_path) is None  # a folder cannot be read as a file
    broken = tmp_path / "broken.pipeline.yaml"
    broken.write_text("name: other\nsteps: [\n")
    assert peek_pipeline_name(broken) == "other"  # no parse, so no error: the loader reports that


def test_discover_spec_files_finds_specs_recursively_and_skips_hidden_places(tmp_path: Path):
    root = tmp_path / "dags"
    wanted = ["a.pipeline.yaml", "b.pipeline.yml", "sub/c.pipeline.yaml", "sub/deeper/d.pipeline.yaml"]
    ignored = [
        ".hidden/e.pipeline.yaml",
        "sub/.git/f.pipeline.yaml",
        "__pycache__/g.pipeline.yaml",
        ".h.pipeline.yaml",
        "notes.yaml",
        "pipeline.yaml",
        "x.pipeline.yaml.bak",
        "scripts/run.py",
    ]
    for name in wanted + ignored:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("name: x\n")
    os.symlink(root / "sub", root / "alias_of_sub")  # sorts before "sub": still found once, as sub/
    os.symlink(root, root / "sub" / "loop")

    assert discover_spec_files(root) == [root / name for name in wanted]
    assert discover_spec_files(str(root)) == [root / name for name in wanted]
    assert discover_spec_files(tmp_path / "missing") == []


def test_the_dags_folder_spec_is_discovered():
    assert DAGS / "abalone.pipeline.yaml" in discover_spec_files(DAGS)
