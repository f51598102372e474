"""Conditions of a condition step: comparisons, In, Not, And/Or (short-circuit), nesting, canonical form."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import ExpressionError
from airflow_provider_mlpipe.model.conditions import (
    COMPARISONS,
    Condition,
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
)
from airflow_provider_mlpipe.model.expressions import JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import ParameterFloat, ParameterInteger, ParameterString
from tests.model.fakes import FakeContext

THRESHOLD = ParameterFloat("MseThreshold", default_value=6.0)
MSE = JsonGet("evaluate", "metrics", "regression_metrics.mse.value")
TRUE = ConditionEquals(1, 1)
FALSE = ConditionEquals(1, 2)


def exploding() -> Condition:
    """A condition that raises ExpressionError when evaluated: ordering a string against a number."""
    return ConditionLessThan("5", 6)


@pytest.fixture
def context() -> FakeContext:
    return FakeContext(
        parameters={"MseThreshold": 6.0, "Model": "xgboost", "A": 1, "B": 2},
        property_files={("evaluate", "metrics"): {"regression_metrics": {"mse": {"value": 4.2}}}},
        outputs={("train", "rows"): 10},
    )


# -- comparisons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition_class", "left", "right", "expected"),
    [
        (ConditionEquals, 5, 5, True),
        (ConditionEquals, 5, 5.0, True),
        (ConditionEquals, "a", "b", False),
        (ConditionEquals, "5", 5, False),
        (ConditionNotEquals, 5, 6, True),
        (ConditionNotEquals, "a", "a", False),
        (ConditionNotEquals, "5", 5, True),
        (ConditionGreaterThan, 6, 5, True),
        (ConditionGreaterThan, 5, 5, False),
        (ConditionGreaterThanOrEqualTo, 5, 5, True),
        (ConditionGreaterThanOrEqualTo, 4.9, 5, False),
        (ConditionLessThan, 4, 5.5, True),
        (ConditionLessThan, 5, 5, False),
        (ConditionLessThanOrEqualTo, 5, 5, True),
        (ConditionLessThanOrEqualTo, 6, 5, False),
        (ConditionGreaterThan, "b", "a", True),
        (ConditionLessThan, "abc", "abd", True),
    ],
)
def test_comparison_of_literals(
    condition_class: type[Condition], left: Any, right: Any, expected: bool
) -> None:
    result = condition_class(left, right).evaluate(FakeContext())

    assert result is expected


def test_comparison_evaluates_expressions(context: FakeContext) -> None:
    condition = ConditionLessThanOrEqualTo(MSE, THRESHOLD)

    assert condition.evaluate(context) is True
    assert context.reads == [("property_file", "evaluate.metrics"), ("parameter", "MseThreshold")]
    assert ConditionGreaterThan(MSE, THRESHOLD * 0.5).evaluate(context) is True
    assert ConditionGreaterThan(StepOutput("train", "rows"), 10).evaluate(context) is False


@pytest.mark.parametrize(
    "condition_class",
    [ConditionGreaterThan, ConditionGreaterThanOrEqualTo, ConditionLessThan, ConditionLessThanOrEqualTo],
)
@pytest.mark.parametrize(
    ("left", "right"),
    [("5", 6), (6, "5"), (True, 1), (1, False), (None, 1), ([1], [2]), (None, None)],
)
def test_ordering_refuses_mixed_or_unordered_types(
    condition_class: type[Condition], left: Any, right: Any
) -> None:
    with pytest.raises(ExpressionError) as raised:
        condition_class(left, right).evaluate(FakeContext())

    message = str(raised.value)
    assert (
        f"cannot compare {left!r} ({type(left).__name__}) with {right!r} ({type(right).__name__})" in message
    )


def test_ordering_error_names_the_condition_and_its_source(context: FakeContext) -> None:
    with pytest.raises(ExpressionError) as raised:
        ConditionLessThan(ParameterString("Model"), 6).evaluate(context)

    assert str(raised.value) == (
        "condition lt: cannot compare 'xgboost' (str) with 6 (int) from {'lt': [{'param': 'Model'}, 6]}"
    )


@pytest.mark.parametrize(
    ("condition_class", "keyword"),
    [
        (ConditionEquals, "eq"),
        (ConditionNotEquals, "ne"),
        (ConditionGreaterThan, "gt"),
        (ConditionGreaterThanOrEqualTo, "ge"),
        (ConditionLessThan, "lt"),
        (ConditionLessThanOrEqualTo, "le"),
    ],
)
def test_comparison_to_dict_and_registry(condition_class: type[Condition], keyword: str) -> None:
    condition = condition_class(MSE, THRESHOLD)

    assert condition.to_dict() == {
        keyword: [
            {
                "json_get": {
                    "step": "evaluate",
                    "property_file": "metrics",
                    "path": "regression_metrics.mse.value",
                }
            },
            {"param": "MseThreshold"},
        ]
    }
    assert COMPARISONS[keyword] is condition_class


# -- In and Not --------------------------------------------------------------------------------


def test_in_evaluates_the_value_and_every_listed_value(context: FakeContext) -> None:
    model = ParameterString("Model")

    assert ConditionIn(model, ["linear", "xgboost"]).evaluate(context) is True
    assert ConditionIn(model, ["linear", "forest"]).evaluate(context) is False
    assert ConditionIn("xgboost", ["linear", model]).evaluate(context) is True
    assert ConditionIn(ParameterInteger("A"), [0, ParameterInteger("B") - 1]).evaluate(context) is True


def test_in_to_dict() -> None:
    condition = ConditionIn(ParameterString("Model"), ["linear", ParameterString("Other")])

    assert condition.to_dict() == {"in": [{"param": "Model"}, ["linear", {"param": "Other"}]]}


@pytest.mark.parametrize(("inner", "expected"), [(TRUE, False), (FALSE, True)])
def test_not_negates(inner: Condition, expected: bool) -> None:
    assert ConditionNot(inner).evaluate(FakeContext()) is expected


def test_not_to_dict() -> None:
    assert ConditionNot(ConditionEquals(ParameterInteger("A"), 1)).to_dict() == {
        "not": {"eq": [{"param": "A"}, 1]}
    }


# -- And / Or ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected_and", "expected_or"),
    [
        ([TRUE, TRUE], True, True),
        ([TRUE, FALSE], False, True),
        ([FALSE, TRUE], False, True),
        ([FALSE, FALSE], False, False),
        ([TRUE], True, True),
        ([FALSE, FALSE, TRUE], False, True),
    ],
)
def test_and_or_truth_table(conditions: list[Condition], expected_and: bool, expected_or: bool) -> None:
    assert ConditionAnd(conditions).evaluate(FakeContext()) is expected_and
    assert ConditionOr(conditions).evaluate(FakeContext()) is expected_or


def test_the_exploding_condition_really_raises() -> None:
    with pytest.raises(ExpressionError, match="cannot compare '5' \\(str\\) with 6 \\(int\\)"):
        exploding().evaluate(FakeContext())


def test_or_short_circuits_after_the_first_true_condition() -> None:
    assert ConditionOr([TRUE, exploding()]).evaluate(FakeContext()) is True
    with pytest.raises(ExpressionError):
        ConditionOr([FALSE, exploding()]).evaluate(FakeContext())


def test_and_short_circuits_after_the_first_false_condition() -> None:
    assert ConditionAnd([FALSE, exploding()]).evaluate(FakeContext()) is False
    with pytest.raises(ExpressionError):
        ConditionAnd([TRUE, exploding()]).evaluate(FakeContext())


def test_short_circuit_does_not_read_the_remaining_values(context: FakeContext) -> None:
    first = ConditionEquals(ParameterInteger("A"), 1)
    second = ConditionEquals(ParameterInteger("B"), 2)

    assert ConditionOr([first, second]).evaluate(context) is True

    assert context.reads == [("parameter", "A")]


def test_and_or_to_dict() -> None:
    a_is_one = ConditionEquals(ParameterInteger("A"), 1)

    assert ConditionAnd([a_is_one, TRUE]).to_dict() == {"and": [{"eq": [{"param": "A"}, 1]}, {"eq": [1, 1]}]}
    assert ConditionOr([a_is_one]).to_dict() == {"or": [{"eq": [{"param": "A"}, 1]}]}


# -- nesting and references ------------------------------------------------------------------


def nested() -> Condition:
    """(mse <= threshold or model in [linear]) and not (A > B)."""
    return ConditionAnd(
        [
            ConditionOr(
                [
                    ConditionLessThanOrEqualTo(MSE, THRESHOLD),
                    ConditionIn(ParameterString("Model"), ["linear"]),
                ]
            ),
            ConditionNot(ConditionGreaterThan(ParameterInteger("A"), ParameterInteger("B"))),
        ]
    )


def test_nested_conditions_evaluate(context: FakeContext) -> None:
    assert nested().evaluate(context) is True

    context.property_files[("evaluate", "metrics")]["regression_metrics"]["mse"]["value"] = 9.0
    assert nested().evaluate(context) is False


def test_nested_to_dict() -> None:
    assert nested().to_dict() == {
        "and": [
            {
                "or": [
                    {"le": [MSE.to_dict(), {"param": "MseThreshold"}]},
                    {"in": [{"param": "Model"}, ["linear"]]},
                ]
            },
            {"not": {"gt": [{"param": "A"}, {"param": "B"}]}},
        ]
    }


def test_references_finds_every_leaf_through_nesting() -> None:
    references = [reference.to_dict() for reference in nested().references()]

    assert references == [
        MSE.to_dict(),
        {"param": "MseThreshold"},
        {"param": "Model"},
        {"param": "A"},
        {"param": "B"},
    ]


def test_references_inside_in_values_and_arithmetic() -> None:
    rows = StepOutput("train", "rows")
    limit = ParameterInteger("A")

    assert list(ConditionIn(rows, [1, limit * 2]).references()) == [rows, limit]


def test_repr_shows_the_canonical_form() -> None:
    assert repr(ConditionNot(TRUE)) == "ConditionNot({'not': {'eq': [1, 1]}})"
