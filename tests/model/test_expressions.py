"""Expressions: arithmetic, step outputs, JsonGet, Join, execution variables, references, canonical forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import ExpressionError
from airflow_provider_mlpipe.model.expressions import (
    BinaryOperation,
    ExecutionVariable,
    ExecutionVariables,
    Expression,
    Join,
    JsonGet,
    StepOutput,
    evaluate_value,
    iter_references,
    parse_json_path,
    to_canonical,
)
from airflow_provider_mlpipe.model.parameters import (
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from airflow_provider_mlpipe.model.steps import ProcessingStep, PropertyFile
from tests.model.fakes import FakeContext

DEPTH = ParameterInteger("MaxDepth", default_value=5)
DEPTH_REF = {"param": "MaxDepth"}


@pytest.fixture
def context() -> FakeContext:
    return FakeContext(
        parameters={"MaxDepth": 5, "Rate": 0.25, "Bucket": "my-bucket", "Zero": 0, "Flag": True},
        outputs={("prep", "rows"): 100, ("prep", "nothing"): None},
        property_files={
            ("evaluate", "metrics"): {
                "regression_metrics": {"mse": {"value": 2.5}},
                "items": [{"c d": 1}, {"c d": 2}],
                "labels": ["a", "b"],
            }
        },
        variables={
            "pipeline_name": "abalone",
            "execution_id": "run-1",
            "start_datetime": "2025-01-01T00:00:00",
        },
    )


# -- arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "canonical", "value"),
    [
        (lambda p: p * 2, {"mul": [DEPTH_REF, 2]}, 10),
        (lambda p: 2 * p, {"mul": [2, DEPTH_REF]}, 10),
        (lambda p: p + 0.5, {"add": [DEPTH_REF, 0.5]}, 5.5),
        (lambda p: 1 + p, {"add": [1, DEPTH_REF]}, 6),
        (lambda p: p - 1, {"sub": [DEPTH_REF, 1]}, 4),
        (lambda p: 10 - p, {"sub": [10, DEPTH_REF]}, 5),
        (lambda p: p / 2, {"div": [DEPTH_REF, 2]}, 2.5),
        (lambda p: 10 / p, {"div": [10, DEPTH_REF]}, 2.0),
        (lambda p: p // 2, {"floordiv": [DEPTH_REF, 2]}, 2),
        (lambda p: p % 3, {"mod": [DEPTH_REF, 3]}, 2),
        (lambda p: p * p, {"mul": [DEPTH_REF, DEPTH_REF]}, 25),
        (lambda p: (p + 1) * 2, {"mul": [{"add": [DEPTH_REF, 1]}, 2]}, 12),
    ],
    ids=["p*2", "2*p", "p+0.5", "1+p", "p-1", "10-p", "p/2", "10/p", "p//2", "p%3", "p*p", "(p+1)*2"],
)
def test_operators_build_expressions_that_compute_at_run_time(
    build: Callable[[Expression], Any], canonical: Any, value: Any, context: FakeContext
) -> None:
    expression = build(DEPTH)

    assert isinstance(expression, BinaryOperation)
    assert expression.to_dict() == canonical
    assert expression.evaluate(context) == value
    assert type(expression.evaluate(context)) is type(value)


@pytest.mark.parametrize(
    ("build", "value"), [(lambda p: 7 // p, 1), (lambda p: 7 % p, 2)], ids=["7//p", "7%p"]
)
def test_reflected_floordiv_and_mod(
    build: Callable[[Expression], Any], value: int, context: FakeContext
) -> None:
    assert build(DEPTH).evaluate(context) == value


def test_operators_mix_parameters_and_step_outputs(context: FakeContext) -> None:
    rate = ParameterFloat("Rate")
    expression = StepOutput("prep", "rows") * rate

    assert expression.evaluate(context) == 25.0


def test_string_concatenation_with_plus(context: FakeContext) -> None:
    bucket = ParameterString("Bucket")

    assert ("s3://" + bucket + "/data").evaluate(context) == "s3://my-bucket/data"
    assert ("s3://" + bucket).to_dict() == {"add": ["s3://", {"param": "Bucket"}]}


@pytest.mark.parametrize(
    "build",
    [
        lambda bucket: bucket - "x",
        lambda bucket: bucket * 2,
        lambda bucket: bucket + 1,
        lambda bucket: 1 + bucket,
        lambda bucket: bucket % "x",
    ],
    ids=["str-str", "str*int", "str+int", "int+str", "str%str"],
)
def test_strings_only_support_plus_with_strings(
    build: Callable[[Expression], Any], context: FakeContext
) -> None:
    with pytest.raises(ExpressionError, match="strings only support \\+ with strings"):
        build(ParameterString("Bucket")).evaluate(context)


@pytest.mark.parametrize(
    "expression",
    [DEPTH / 0, DEPTH // 0, DEPTH % 0, 10 / ParameterInteger("Zero"), DEPTH / 0.0],
)
def test_division_by_zero_is_an_expression_error(expression: Expression, context: FakeContext) -> None:
    with pytest.raises(ExpressionError, match="division by zero in"):
        expression.evaluate(context)


def test_division_by_zero_message_shows_the_expression(context: FakeContext) -> None:
    with pytest.raises(ExpressionError) as raised:
        (DEPTH / 0).evaluate(context)

    assert str(raised.value) == "division by zero in {'div': [{'param': 'MaxDepth'}, 0]}"


def test_bool_operand_is_an_expression_error(context: FakeContext) -> None:
    with pytest.raises(ExpressionError) as raised:
        (ParameterBoolean("Flag") + 1).evaluate(context)

    assert str(raised.value) == (
        "cannot compute {'param': 'Flag'} + 1: operand True is not a number or string"
    )


@pytest.mark.parametrize(
    "expression",
    [
        StepOutput("prep", "nothing") * 2,
        2 * StepOutput("prep", "nothing"),
        BinaryOperation("+", 1, True),
        BinaryOperation("+", [1], [2]),
        BinaryOperation("*", {"a": 1}, 2),
    ],
)
def test_non_numeric_operands_are_expression_errors(expression: Expression, context: FakeContext) -> None:
    with pytest.raises(ExpressionError, match="is not a number or string"):
        expression.evaluate(context)


def test_binary_operation_of_literals() -> None:
    assert BinaryOperation("+", 1, 2).evaluate(FakeContext()) == 3
    assert BinaryOperation("-", 1, 2).to_dict() == {"sub": [1, 2]}


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ExpressionError, match=r"unknown operator '\*\*'; known: \+ - \* / // %"):
        BinaryOperation("**", 2, 3)


def test_expression_repr_shows_the_canonical_form() -> None:
    assert repr(DEPTH * 2) == "BinaryOperation({'mul': [{'param': 'MaxDepth'}, 2]})"


# -- step outputs and execution variables --------------------------------------------------


def test_step_output_reads_the_context(context: FakeContext) -> None:
    rows = StepOutput("prep", "rows")

    assert rows.evaluate(context) == 100
    assert context.reads == [("output", "prep.rows")]
    assert rows.to_dict() == {"step": "prep", "output": "rows"}
    assert list(rows.references()) == [rows]


@pytest.mark.parametrize(
    ("variable", "name", "value"),
    [
        (ExecutionVariables.PIPELINE_NAME, "pipeline_name", "abalone"),
        (ExecutionVariables.PIPELINE_EXECUTION_ID, "execution_id", "run-1"),
        (ExecutionVariables.START_DATETIME, "start_datetime", "2025-01-01T00:00:00"),
    ],
)
def test_execution_variables(
    variable: ExecutionVariable, name: str, value: str, context: FakeContext
) -> None:
    assert variable.name == name
    assert variable.to_dict() == {"execution": name}
    assert variable.evaluate(context) == value
    assert ExecutionVariable(name).to_dict() == variable.to_dict()


def test_unknown_execution_variable_lists_the_known_ones() -> None:
    with pytest.raises(ExpressionError) as raised:
        ExecutionVariable("run_id")

    assert str(raised.value) == (
        "unknown execution variable 'run_id'; known: pipeline_name, execution_id, start_datetime"
    )


# -- JSON paths and JsonGet ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("a.b[0]['c d']", ["a", "b", 0, "c d"]),
        ("$", []),
        ("", []),
        ("   ", []),
        ("$.a.b", ["a", "b"]),
        ("$[2]", [2]),
        ("[0].x", [0, "x"]),
        ('a["x.y"]', ["a", "x.y"]),
        ("a[ 12 ]", ["a", 12]),
        ("regression_metrics.mse.value", ["regression_metrics", "mse", "value"]),
        ("f1-score", ["f1-score"]),
        ("a['0']", ["a", "0"]),
    ],
)
def test_parse_json_path(path: str, parts: list[str | int]) -> None:
    assert parse_json_path(path) == parts


@pytest.mark.parametrize(
    ("path", "position"),
    [("a..b", 1), ("a[x]", 1), ("a.1", 1), ("a[-1]", 1), ("a['b", 1), ("$$", 0), ("a.[0]", 1), ("1a", 0)],
)
def test_invalid_json_path_names_the_position(path: str, position: int) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_json_path(path)

    assert str(raised.value) == f"invalid JSON path {path!r} at position {position}"


def test_json_get_refuses_an_invalid_path_when_built() -> None:
    with pytest.raises(ExpressionError, match="invalid JSON path"):
        JsonGet("evaluate", "metrics", "a..b")


def test_json_get_takes_a_step_and_a_property_file_object() -> None:
    metrics = PropertyFile("metrics", output_name="evaluation", path="metrics.json")
    evaluate = ProcessingStep("evaluate", code="evaluate.py", property_files=[metrics])

    mse = JsonGet(evaluate, metrics, "regression_metrics.mse.value")

    assert (mse.step_name, mse.property_file, mse.path_parts) == (
        "evaluate",
        "metrics",
        ["regression_metrics", "mse", "value"],
    )
    assert mse.to_dict() == {
        "json_get": {"step": "evaluate", "property_file": "metrics", "path": "regression_metrics.mse.value"}
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("regression_metrics.mse.value", 2.5),
        ("items[1]['c d']", 2),
        ("labels[0]", "a"),
        ("regression_metrics.mse", {"value": 2.5}),
    ],
)
def test_json_get_reads_the_property_file(path: str, value: Any, context: FakeContext) -> None:
    assert JsonGet("evaluate", "metrics", path).evaluate(context) == value
    assert context.reads == [("property_file", "evaluate.metrics")]


@pytest.mark.parametrize("path", ["", "$"])
def test_json_get_empty_path_is_the_whole_document(path: str, context: FakeContext) -> None:
    document = context.property_files[("evaluate", "metrics")]

    assert JsonGet("evaluate", "metrics", path).evaluate(context) == document


@pytest.mark.parametrize(
    ("path", "stopped_at"),
    [
        ("regression_metrics.rmse.value", "'rmse'"),
        ("labels[5]", "5"),
        ("labels.first", "'first'"),
        ("regression_metrics[0]", "0"),
        ("regression_metrics.mse.value.deeper", "'deeper'"),
    ],
)
def test_json_get_missing_value_names_path_file_and_step(
    path: str, stopped_at: str, context: FakeContext
) -> None:
    with pytest.raises(ExpressionError) as raised:
        JsonGet("evaluate", "metrics", path).evaluate(context)

    assert str(raised.value) == (
        f"JsonGet: {path!r} not found in property file 'metrics' of step 'evaluate' (stopped at {stopped_at})"
    )


# -- Join ------------------------------------------------------------------------------------


def test_join_renders_values_and_bools_as_true_false(context: FakeContext) -> None:
    join = Join(on="/", values=["s3:", "", ParameterString("Bucket"), DEPTH * 2, True, False, 0.5])

    assert join.evaluate(context) == "s3://my-bucket/10/true/false/0.5"


def test_join_renders_a_boolean_parameter_as_true(context: FakeContext) -> None:
    assert Join(on="-", values=["deploy", ParameterBoolean("Flag")]).evaluate(context) == "deploy-true"


def test_join_defaults_to_no_separator_and_no_values(context: FakeContext) -> None:
    assert Join().evaluate(context) == ""
    assert Join(values=["a", 1]).evaluate(context) == "a1"


def test_join_to_dict_is_canonical() -> None:
    join = Join(on="/", values=["s3:", ParameterString("Bucket"), StepOutput("prep", "rows")])

    assert join.to_dict() == {
        "join": {"on": "/", "values": ["s3:", {"param": "Bucket"}, {"step": "prep", "output": "rows"}]}
    }


# -- references and canonical forms --------------------------------------------------------


def test_references_finds_every_leaf_inside_nested_values() -> None:
    bucket = ParameterString("Bucket")
    rows = StepOutput("prep", "rows")
    mse = JsonGet("evaluate", "metrics", "regression_metrics.mse.value")
    started = ExecutionVariables.START_DATETIME

    join = Join(on="/", values=[bucket, ["literal", rows, {"key": mse, "n": 1}], (DEPTH + 1) * started])

    assert list(join.references()) == [bucket, rows, mse, DEPTH, started]


def test_references_of_literal_only_expressions_is_empty() -> None:
    assert list(BinaryOperation("+", 1, 2).references()) == []
    assert list(Join(on=",", values=["a", ["b"], {"c": 3}]).references()) == []


def test_iter_references_walks_plain_lists_and_dicts() -> None:
    rows = StepOutput("prep", "rows")

    assert list(iter_references({"a": [1, (rows,)], "b": DEPTH * 2, "c": "text"})) == [rows, DEPTH]
    assert list(iter_references("text")) == []


def test_evaluate_value_evaluates_nested_values(context: FakeContext) -> None:
    value = {"a": [DEPTH, 1, (StepOutput("prep", "rows"),)], "b": DEPTH * 2, "c": "text"}

    assert evaluate_value(value, context) == {"a": [5, 1, [100]], "b": 10, "c": "text"}


def test_to_canonical_turns_nested_expressions_into_plain_data() -> None:
    value = {1: [DEPTH, ("x", StepOutput("prep", "rows"))], "b": Join(on="-", values=[DEPTH])}

    assert to_canonical(value) == {
        "1": [DEPTH_REF, ["x", {"step": "prep", "output": "rows"}]],
        "b": {"join": {"on": "-", "values": [DEPTH_REF]}},
    }
