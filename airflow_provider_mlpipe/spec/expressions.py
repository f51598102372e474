"""Reading values, expressions and conditions of a spec into model objects.

A value is a literal or an expression: ``{param: X}``, ``{step: A, output: o}``, ``{json_get: ...}``,
``{join: ...}``, ``{execution: ...}``, arithmetic (``{mul: [a, b]}``), or ``{literal: ...}`` to escape.
Conditions: ``eq ne lt le gt ge`` (``[left, right]``), ``in``, ``not``, ``and``, ``or``, nested freely.
Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_mlpipe.exceptions import ExpressionError
from airflow_provider_mlpipe.model.conditions import (
    COMPARISONS,
    Condition,
    ConditionAnd,
    ConditionIn,
    ConditionNot,
    ConditionOr,
)
from airflow_provider_mlpipe.model.expressions import (
    OPERATOR_NAMES,
    BinaryOperation,
    ExecutionVariable,
    Join,
    JsonGet,
    StepOutput,
)
from airflow_provider_mlpipe.model.parameters import Parameter
from airflow_provider_mlpipe.spec.fields import MAX_VALUES, FieldReader, describe, suggestion
from airflow_provider_mlpipe.spec.yaml_source import line_of_item, line_of_key

_JSON_GET_KEYS = ("step", "property_file", "path")
_JOIN_KEYS = ("on", "values")
CONDITION_KEYS = (*COMPARISONS, "in", "not", "and", "or")
# One-key mappings with these keys are expressions; ``{step, output}`` is recognised by its ``step`` key.
_EXPRESSION_KEYS = (
    "param",
    "step",
    "json_get",
    "join",
    "execution",
    "literal",
    "item",
    "loop",
    *OPERATOR_NAMES,
)


class ExpressionReader(FieldReader):
    """Reads values and conditions; the spec's parameters must be read first (``self.parameters``)."""

    def spend(self, field: str, line: int | None) -> None:
        self._values_left -= 1
        if self._values_left < 0:
            raise self.error(f"the spec holds more than {MAX_VALUES} values (an alias bomb?)", field, line)

    def value(self, raw: Any, field: str, line: int | None) -> Any:
        """A literal, an expression, or a dict/list whose items are read the same way."""
        self.spend(field, line)
        self.note(field, line)
        if isinstance(raw, Mapping):
            if _is_expression(raw):
                return self.expression(raw, field, line)
            return {
                key: self.value(item, f"{field}.{key}", line_of_key(raw, key, line))
                for key, item in raw.items()
            }
        if isinstance(raw, list):
            return [
                self.value(item, f"{field}[{index}]", line_of_item(raw, index, line))
                for index, item in enumerate(raw)
            ]
        return raw

    def expression(self, raw: Mapping[Any, Any], field: str, line: int | None) -> Any:
        if "step" in raw:
            return self.step_output(raw, field, line)
        ((key, operand),) = raw.items()
        operand_field = f"{field}.{key}"
        try:
            if key in OPERATOR_NAMES:
                left, right = self.pair(operand, operand_field, line)
                return BinaryOperation(OPERATOR_NAMES[key], left, right)
            return _EXPRESSION_READERS[key](self, operand, operand_field, line)
        except ExpressionError as error:  # e.g. an invalid JSON path: a spec problem, not a run-time one
            raise self.error(str(error), field, line) from None

    def pair(self, raw: Any, field: str, line: int | None) -> tuple[Any, Any]:
        """Two operands, as ``[left, right]``."""
        items = self.sequence(raw, field, line)
        if len(items) != 2:
            raise self.error(f"expected two operands [left, right], got {len(items)}", field, line)
        return (
            self.value(items[0], f"{field}[0]", line_of_item(items, 0, line)),
            self.value(items[1], f"{field}[1]", line_of_item(items, 1, line)),
        )

    def parameter_reference(self, raw: Any, field: str, line: int | None) -> Parameter:
        name = self.text(raw, field, line)
        if name not in self.parameters:
            declared = ", ".join(self.parameters) or "none"
            raise self.error(
                f"unknown parameter {name!r}{suggestion(name, list(self.parameters))} (declared: {declared})",
                field.removesuffix(".param"),
                line,
            )
        return self.parameters[name]

    def step_output(self, raw: Mapping[Any, Any], field: str, line: int | None) -> StepOutput:
        self.check_keys(
            raw, ("step", "output", "path"), what="a step output reference {step, output}", prefix=f"{field}."
        )
        step = self.text(raw["step"], f"{field}.step", line)
        output = self.require(
            raw, "output", what="a step output reference {step, output}", prefix=f"{field}."
        )
        path = self.optional_text(raw, "path", prefix=f"{field}.") or ""
        try:
            return StepOutput(step, self.text(output, f"{field}.output", line), path)
        except ExpressionError as error:
            raise self.error(str(error), f"{field}.path", line) from None

    def json_get(self, raw: Any, field: str, line: int | None) -> JsonGet:
        spec = self.mapping(raw, field, line)
        self.check_keys(spec, _JSON_GET_KEYS, what="json_get", prefix=f"{field}.")
        step = self.text(
            self.require(spec, "step", what="json_get", prefix=f"{field}."), f"{field}.step", line
        )
        name = self.require(spec, "property_file", what="json_get", prefix=f"{field}.")
        path = self.optional_text(spec, "path", prefix=f"{field}.") or ""
        return JsonGet(step, self.text(name, f"{field}.property_file", line), path)

    def join(self, raw: Any, field: str, line: int | None) -> Join:
        spec = self.mapping(raw, field, line)
        self.check_keys(spec, _JOIN_KEYS, what="join", prefix=f"{field}.")
        values = self.sequence(
            self.require(spec, "values", what="join", prefix=f"{field}."), f"{field}.values", line
        )
        on = self.optional_text(spec, "on", prefix=f"{field}.") or ""
        return Join(
            on,
            [
                self.value(item, f"{field}.values[{i}]", line_of_item(values, i, line))
                for i, item in enumerate(values)
            ],
        )

    def execution_variable(self, raw: Any, field: str, line: int | None) -> ExecutionVariable:
        name = self.text(raw, field, line)
        if name not in ExecutionVariable.NAMES:
            raise self.error(
                f"unknown execution variable {name!r}{suggestion(name, ExecutionVariable.NAMES)} "
                f"(known: {', '.join(ExecutionVariable.NAMES)})",
                field,
                line,
            )
        return ExecutionVariable(name)

    def item(self, raw: Any, field: str, line: int | None) -> Any:
        """``{item: ""}``: the current item of a fan-out step; ``{item: "key"}`` a part of it."""
        from airflow_provider_mlpipe.model.fanout import ForEachItem

        return ForEachItem("" if raw is None else self.text(raw, field, line))

    def loop_variable(self, raw: Any, field: str, line: int | None) -> Any:
        """``{loop: iteration}``: the number of the current iteration of the loop, from 1."""
        from airflow_provider_mlpipe.model.loops import LoopIteration

        if raw != "iteration":
            raise self.error(f"unknown loop variable {raw!r} (known: iteration)", field, line)
        return LoopIteration()

    def literal(self, raw: Any, field: str, line: int | None) -> Any:
        """``raw`` as plain dicts and lists, without the line bookkeeping; never read as expressions."""
        self.spend(field, line)  # a literal can hide an alias bomb too
        if isinstance(raw, Mapping):
            return {key: self.literal(item, field, line) for key, item in raw.items()}
        if isinstance(raw, list):
            return [self.literal(item, field, line) for item in raw]
        return raw

    # -- conditions ------------------------------------------------------------------------------
    def condition(self, raw: Any, field: str, line: int | None) -> Condition:
        """One condition: ``{le: [a, b]}``, ``{in: [a, [x, y]]}``, ``{not: ...}``, ``{and|or: [...]}``."""
        self.spend(field, line)
        self.note(field, line)
        if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in CONDITION_KEYS:
            hint = _condition_hint(raw)
            raise self.error(
                f"expected a condition (a mapping with one key of {', '.join(CONDITION_KEYS)}), "
                f"got {describe(raw)}{hint}",
                field,
                line,
            )
        ((key, operand),) = raw.items()
        inner = f"{field}.{key}"
        if key in COMPARISONS:
            return COMPARISONS[key](*self.pair(operand, inner, line))
        if key == "in":
            return self.condition_in(operand, inner, line)
        if key == "not":
            return ConditionNot(self.condition(operand, inner, line_of_key(raw, key, line)))
        return self.condition_group(key, operand, inner, line)

    def condition_in(self, raw: Any, field: str, line: int | None) -> ConditionIn:
        items = self.sequence(raw, field, line)
        if len(items) != 2 or not isinstance(items[1], list):
            raise self.error("expected [value, [choice, ...]]", field, line)
        value, choices = self.pair(items, field, line)
        return ConditionIn(value, choices)

    def condition_group(self, key: str, raw: Any, field: str, line: int | None) -> Condition:
        items = self.sequence(raw, field, line)
        if not items:
            raise self.error(f"'{key}' needs at least one condition", field, line)
        conditions = [
            self.condition(item, f"{field}[{i}]", line_of_item(items, i, line))
            for i, item in enumerate(items)
        ]
        return ConditionAnd(conditions) if key == "and" else ConditionOr(conditions)


# Spellings from other languages; difflib alone would suggest ``lt`` for ``lte``, the wrong operator.
_CONDITION_ALIASES = {
    "lte": "le",
    "leq": "le",
    "gte": "ge",
    "geq": "ge",
    "neq": "ne",
    "equals": "eq",
    "=": "eq",
    "==": "eq",
}


def _condition_hint(raw: Any) -> str:
    """``"; did you mean 'le'?"`` for a one-key mapping whose key is close to a condition keyword."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        return ""
    key = next(iter(raw))
    if isinstance(key, str) and key.lower() in _CONDITION_ALIASES:
        return f"; did you mean {_CONDITION_ALIASES[key.lower()]!r}?"
    return suggestion(key, CONDITION_KEYS)


def _is_expression(raw: Mapping[Any, Any]) -> bool:
    """Whether a mapping is an expression rather than a plain dict value.

    A one-key mapping with an expression keyword is one. So is a mapping with ``step`` and ``output``,
    or with ``step`` and one other key: ``{step: A, outptu: x}`` is far more likely a mistyped
    reference than a dict, so it is read as a reference (and refused with a suggestion). Wrap a
    dict meant literally in ``{literal: ...}``.
    """
    if "step" in raw:
        return "output" in raw or len(raw) <= 2
    return len(raw) == 1 and next(iter(raw)) in _EXPRESSION_KEYS


_EXPRESSION_READERS: dict[str, Callable[[ExpressionReader, Any, str, int | None], Any]] = {
    "param": ExpressionReader.parameter_reference,
    "json_get": ExpressionReader.json_get,
    "join": ExpressionReader.join,
    "execution": ExpressionReader.execution_variable,
    "literal": ExpressionReader.literal,
    "item": ExpressionReader.item,
    "loop": ExpressionReader.loop_variable,
}
