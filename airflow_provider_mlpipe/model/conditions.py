"""Conditions of a condition step, named as in SageMaker (``ConditionLessThanOrEqualTo(left, right)``).

Beyond SageMaker: ``ConditionNotEquals`` and ``ConditionAnd``, and conditions nest to any depth.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from airflow_provider_mlpipe.exceptions import ExpressionError
from airflow_provider_mlpipe.model.expressions import (
    EvaluationContext,
    Expression,
    evaluate_value,
    iter_references,
    to_canonical,
)


class Condition(ABC):
    """A boolean test evaluated when the condition step runs."""

    @abstractmethod
    def evaluate(self, context: EvaluationContext) -> bool:
        """Return whether the condition holds in this run."""

    @abstractmethod
    def operands(self) -> Iterator[Any]:
        """Yield the values and sub-conditions this condition reads."""

    @abstractmethod
    def to_dict(self) -> Any:
        """The canonical form, the same as the YAML syntax."""

    def references(self) -> Iterator[Expression]:
        """Yield every parameter, step output or property file this condition reads."""
        for operand in self.operands():
            if isinstance(operand, Condition):
                yield from operand.references()
            else:
                yield from iter_references(operand)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class _Comparison(Condition):
    keyword: ClassVar[str]
    compare: ClassVar[Callable[[Any, Any], bool]]
    ordering: ClassVar[bool] = True

    def __init__(self, left: Any, right: Any) -> None:
        self.left = left
        self.right = right

    def evaluate(self, context: EvaluationContext) -> bool:
        left = evaluate_value(self.left, context)
        right = evaluate_value(self.right, context)
        if self.ordering and not _comparable(left, right):
            raise ExpressionError(
                f"condition {self.keyword}: cannot compare {left!r} ({type(left).__name__}) "
                f"with {right!r} ({type(right).__name__}) from {self.to_dict()!r}"
            )
        return bool(type(self).compare(left, right))

    def operands(self) -> Iterator[Any]:
        return iter((self.left, self.right))

    def to_dict(self) -> Any:
        return {self.keyword: [to_canonical(self.left), to_canonical(self.right)]}


def _comparable(left: Any, right: Any) -> bool:
    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if is_number(left) and is_number(right):
        return True
    return type(left) is type(right) and isinstance(left, str)


class ConditionEquals(_Comparison):
    """``left == right``."""

    keyword = "eq"
    compare = operator.eq
    ordering = False


class ConditionNotEquals(_Comparison):
    """``left != right``."""

    keyword = "ne"
    compare = operator.ne
    ordering = False


class ConditionGreaterThan(_Comparison):
    """``left > right``."""

    keyword = "gt"
    compare = operator.gt


class ConditionGreaterThanOrEqualTo(_Comparison):
    """``left >= right``."""

    keyword = "ge"
    compare = operator.ge


class ConditionLessThan(_Comparison):
    """``left < right``."""

    keyword = "lt"
    compare = operator.lt


class ConditionLessThanOrEqualTo(_Comparison):
    """``left <= right``."""

    keyword = "le"
    compare = operator.le


class ConditionIn(Condition):
    """``value in in_values``.

    :param value: the value to look for.
    :param in_values: a list of literals and expressions.
    """

    def __init__(self, value: Any, in_values: list[Any]) -> None:
        self.value = value
        self.in_values = list(in_values)

    def evaluate(self, context: EvaluationContext) -> bool:
        return evaluate_value(self.value, context) in evaluate_value(self.in_values, context)

    def operands(self) -> Iterator[Any]:
        return iter((self.value, self.in_values))

    def to_dict(self) -> Any:
        return {"in": [to_canonical(self.value), to_canonical(self.in_values)]}


class ConditionNot(Condition):
    """The negation of another condition."""

    def __init__(self, expression: Condition) -> None:
        self.expression = expression

    def evaluate(self, context: EvaluationContext) -> bool:
        return not self.expression.evaluate(context)

    def operands(self) -> Iterator[Any]:
        return iter((self.expression,))

    def to_dict(self) -> Any:
        return {"not": self.expression.to_dict()}


class ConditionOr(Condition):
    """True when any of the conditions is true (evaluated left to right, short-circuit)."""

    keyword = "or"

    def __init__(self, conditions: list[Condition]) -> None:
        self.conditions = list(conditions)

    def evaluate(self, context: EvaluationContext) -> bool:
        return any(condition.evaluate(context) for condition in self.conditions)

    def operands(self) -> Iterator[Any]:
        return iter(self.conditions)

    def to_dict(self) -> Any:
        return {self.keyword: [condition.to_dict() for condition in self.conditions]}


class ConditionAnd(ConditionOr):
    """True when all of the conditions are true (a condition step's list is an implicit And)."""

    keyword = "and"

    def evaluate(self, context: EvaluationContext) -> bool:
        return all(condition.evaluate(context) for condition in self.conditions)


COMPARISONS: dict[str, type[_Comparison]] = {
    cls.keyword: cls
    for cls in (
        ConditionEquals,
        ConditionNotEquals,
        ConditionGreaterThan,
        ConditionGreaterThanOrEqualTo,
        ConditionLessThan,
        ConditionLessThanOrEqualTo,
    )
}
