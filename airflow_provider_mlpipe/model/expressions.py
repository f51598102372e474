"""Expressions: values that are only known when a pipeline runs.

A SageMaker user knows them as parameters, ``step.properties...``, ``JsonGet`` and ``Join``. Here they
are plain objects that name what they depend on (:meth:`Expression.references`) and compute their value
against an :class:`EvaluationContext` that the runner provides. Nothing here is ever passed to ``eval``.

Unlike SageMaker, expressions support arithmetic (``max_depth * 2``, ``threshold + 0.5``), so pipeline
parameters can be combined without a processing step.
"""

from __future__ import annotations

import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from airflow_provider_mlpipe.exceptions import ExpressionError


class EvaluationContext(Protocol):
    """What an expression needs from the runner to compute its value."""

    def parameter(self, name: str) -> Any:
        """Return the run-time value of pipeline parameter ``name``."""

    def step_output(self, step_name: str, output_name: str) -> Any:
        """Return the value of output ``output_name`` of step ``step_name`` (loaded from the artifact store)."""

    def property_file(self, step_name: str, property_file: str) -> Any:
        """Return the parsed JSON content of property file ``property_file`` of step ``step_name``."""

    def execution_variable(self, name: str) -> Any:
        """Return an execution variable: ``pipeline_name``, ``execution_id`` or ``start_datetime``."""


class Expression(ABC):
    """A value computed at run time. Supports ``+ - * / // %`` with other expressions and literals."""

    @abstractmethod
    def evaluate(self, context: EvaluationContext) -> Any:
        """Compute the value for one run.

        :param context: gives parameter values, step outputs and property files of the run.
        """

    @abstractmethod
    def children(self) -> Iterator[Any]:
        """Yield the operands of this expression (expressions or literals)."""

    @abstractmethod
    def to_dict(self) -> Any:
        """Return the canonical, JSON-able form used in step digests and error messages."""

    def references(self) -> Iterator[Expression]:
        """Yield every leaf reference (parameter, step output, JsonGet, execution variable) inside."""
        for child in self.children():
            yield from iter_references(child)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    def _binary(self, op: str, other: Any, reflected: bool = False) -> BinaryOperation:
        return BinaryOperation(op, other, self) if reflected else BinaryOperation(op, self, other)

    def __add__(self, other: Any) -> BinaryOperation:
        return self._binary("+", other)

    def __radd__(self, other: Any) -> BinaryOperation:
        return self._binary("+", other, reflected=True)

    def __sub__(self, other: Any) -> BinaryOperation:
        return self._binary("-", other)

    def __rsub__(self, other: Any) -> BinaryOperation:
        return self._binary("-", other, reflected=True)

    def __mul__(self, other: Any) -> BinaryOperation:
        return self._binary("*", other)

    def __rmul__(self, other: Any) -> BinaryOperation:
        return self._binary("*", other, reflected=True)

    def __truediv__(self, other: Any) -> BinaryOperation:
        return self._binary("/", other)

    def __rtruediv__(self, other: Any) -> BinaryOperation:
        return self._binary("/", other, reflected=True)

    def __floordiv__(self, other: Any) -> BinaryOperation:
        return self._binary("//", other)

    def __rfloordiv__(self, other: Any) -> BinaryOperation:
        return self._binary("//", other, reflected=True)

    def __mod__(self, other: Any) -> BinaryOperation:
        return self._binary("%", other)

    def __rmod__(self, other: Any) -> BinaryOperation:
        return self._binary("%", other, reflected=True)


def iter_references(value: Any) -> Iterator[Expression]:
    """Yield the leaf references inside ``value``: an expression, or lists/dicts that hold expressions."""
    if isinstance(value, Reference):
        yield value
    elif isinstance(value, Expression):
        yield from value.references()
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_references(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_references(item)


def evaluate_value(value: Any, context: EvaluationContext) -> Any:
    """Evaluate ``value``: expressions are computed, lists and dicts are evaluated item by item."""
    if isinstance(value, Expression):
        return value.evaluate(context)
    if isinstance(value, Mapping):
        return {key: evaluate_value(item, context) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [evaluate_value(item, context) for item in value]
    return value


def to_canonical(value: Any) -> Any:
    """Return the JSON-able canonical form of a value that may hold expressions."""
    if isinstance(value, Expression):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(key): to_canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        # Set order depends on the process's hash seed; a digest must not.
        return sorted((to_canonical(item) for item in value), key=repr)
    return value


class Reference(Expression):
    """A leaf expression: it depends on something outside the expression tree."""

    def children(self) -> Iterator[Any]:
        return iter(())

    def references(self) -> Iterator[Expression]:
        yield self


class StepOutput(Reference):
    """The output ``output_name`` of step ``step_name``; its value is loaded from the artifact store.

    :param step_name: the producing step.
    :param output_name: one of that step's declared outputs.
    :param path: a JSON path into the output's value (``max_depth``, ``[0]``), for a JSON output such
        as a tuning step's ``best_hyperparameters``; empty for the whole value.
    """

    def __init__(self, step_name: str, output_name: str, path: str = "") -> None:
        self.step_name = step_name
        self.output_name = output_name
        self.path = path
        self.path_parts = parse_json_path(path) if path else []

    def evaluate(self, context: EvaluationContext) -> Any:
        value = context.step_output(self.step_name, self.output_name)
        for part in self.path_parts:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(
                    f"output {self.output_name!r} of step {self.step_name!r} has no {self.path!r} "
                    f"(stopped at {part!r})"
                ) from None
        return value

    def to_dict(self) -> Any:
        base = {"step": self.step_name, "output": self.output_name}
        # Only when set: references written before paths existed keep their digest.
        return {**base, "path": self.path} if self.path else base


class ExecutionVariable(Reference):
    """A property of the running execution, as SageMaker's ``ExecutionVariables``.

    :param name: ``pipeline_name``, ``execution_id`` or ``start_datetime``.
    """

    NAMES = ("pipeline_name", "execution_id", "start_datetime")

    def __init__(self, name: str) -> None:
        if name not in self.NAMES:
            raise ExpressionError(f"unknown execution variable {name!r}; known: {', '.join(self.NAMES)}")
        self.name = name

    def evaluate(self, context: EvaluationContext) -> Any:
        return context.execution_variable(self.name)

    def to_dict(self) -> Any:
        return {"execution": self.name}


class ExecutionVariables:
    """SageMaker-style names for the execution variables."""

    PIPELINE_NAME = ExecutionVariable("pipeline_name")
    PIPELINE_EXECUTION_ID = ExecutionVariable("execution_id")
    START_DATETIME = ExecutionVariable("start_datetime")


_PATH_TOKEN = re.compile(
    r"\s*(?:\.?([A-Za-z_][\w-]*)|\[\s*(\d+)\s*\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\])"
)


def parse_json_path(path: str) -> list[str | int]:
    """Split ``a.b[0]['c d']`` into keys and indexes; ``""`` or ``"$"`` is the whole document.

    :param path: a dotted JSON path as SageMaker's ``JsonGet`` takes it.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        match = _PATH_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"invalid JSON path {path!r} at position {position}")
        name, index, quoted_single, quoted_double = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(next(p for p in (name, quoted_single, quoted_double) if p is not None))
        position = match.end()
    return parts


class JsonGet(Reference):
    """A value read from a JSON property file written by a step (SageMaker's ``JsonGet``).

    :param step_name: the step that wrote the property file (or the step object).
    :param property_file: the :class:`PropertyFile` or its name.
    :param json_path: dotted path into the document, e.g. ``regression_metrics.mse.value``; empty for all.
    """

    def __init__(self, step_name: Any, property_file: Any, json_path: str = "") -> None:
        self.step_name: str = getattr(step_name, "name", step_name)
        self.property_file: str = getattr(property_file, "name", property_file)
        self.json_path = json_path
        self.path_parts = parse_json_path(json_path)

    def evaluate(self, context: EvaluationContext) -> Any:
        document = context.property_file(self.step_name, self.property_file)
        current = document
        for part in self.path_parts:
            try:
                current = current[part]
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(
                    f"JsonGet: {self.json_path!r} not found in property file {self.property_file!r} "
                    f"of step {self.step_name!r} (stopped at {part!r})"
                ) from None
        return current

    def to_dict(self) -> Any:
        return {
            "json_get": {"step": self.step_name, "property_file": self.property_file, "path": self.json_path}
        }


class Join(Expression):
    """Join values into a string, as SageMaker's ``Join``: ``Join(on="/", values=[bucket, prefix])``.

    :param on: the separator.
    :param values: literals and expressions; each is converted with ``str``.
    """

    def __init__(self, on: str = "", values: list[Any] | None = None) -> None:
        self.on = on
        self.values = list(values or [])

    def evaluate(self, context: EvaluationContext) -> Any:
        return self.on.join(_as_text(evaluate_value(value, context)) for value in self.values)

    def children(self) -> Iterator[Any]:
        return iter(self.values)

    def to_dict(self) -> Any:
        return {"join": {"on": self.on, "values": to_canonical(self.values)}}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}
OPERATOR_NAMES = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}


class BinaryOperation(Expression):
    """Arithmetic on parameters and step values: ``left <op> right`` with op one of ``+ - * / // %``.

    ``+`` on two strings concatenates them.
    """

    def __init__(self, op: str, left: Any, right: Any) -> None:
        if op not in _OPERATORS:
            raise ExpressionError(f"unknown operator {op!r}; known: {' '.join(_OPERATORS)}")
        self.op = op
        self.left = left
        self.right = right

    def evaluate(self, context: EvaluationContext) -> Any:
        left = evaluate_value(self.left, context)
        right = evaluate_value(self.right, context)
        for operand in (left, right):
            if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
                raise ExpressionError(
                    f"cannot compute {to_canonical(self.left)!r} {self.op} {to_canonical(self.right)!r}: "
                    f"operand {operand!r} is not a number or string"
                )
        if isinstance(left, str) != isinstance(right, str) or (isinstance(left, str) and self.op != "+"):
            raise ExpressionError(
                f"cannot compute {left!r} {self.op} {right!r}: strings only support + with strings"
            )
        try:
            return _OPERATORS[self.op](left, right)
        except ZeroDivisionError:
            raise ExpressionError(f"division by zero in {to_canonical(self.to_dict())!r}") from None

    def children(self) -> Iterator[Any]:
        return iter((self.left, self.right))

    def to_dict(self) -> Any:
        name = next(key for key, symbol in OPERATOR_NAMES.items() if symbol == self.op)
        return {name: [to_canonical(self.left), to_canonical(self.right)]}
