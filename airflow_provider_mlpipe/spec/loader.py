"""The YAML front-end: a ``*.pipeline.yaml`` spec becomes a validated :class:`Pipeline`.

The spec is read with a safe loader that remembers the line of every mapping, key and list item, so
that every error -- found here, or raised later by :meth:`Pipeline.validate` through the pipeline's
``locations`` -- names the file, the step, the field and the line. Expressions are plain mappings
(``{param: MaxDepth}``) turned into model objects; nothing is ever passed to ``eval``.

No Airflow import here: ``mlpipe validate`` and the per-spec work of the DAG processor stay fast.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from airflow_provider_mlpipe.exceptions import ExpressionError, PipelineGraphError, SpecError
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
from airflow_provider_mlpipe.model.parameters import PARAMETER_TYPES, Parameter
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.model.steps import (
    IO_NAME,
    STEP_KINDS,
    STEP_NAME,
    ProcessingInput,
    ProcessingOutput,
    PropertyFile,
    RetryPolicy,
    Step,
    TrainingStep,
)

try:  # libyaml parses several times faster; the constructor, and so the safety, is the same
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]

SPEC_SUFFIXES = (".pipeline.yaml", ".pipeline.yml")

_TOP_KEYS = ("name", "description", "tags", "parameters", "steps", "artifact_store")
_PARAMETER_KEYS = ("name", "type", "default", "enum", "description", "secret")
_COMMON_STEP_KEYS = ("name", "type", "depends_on", "retry", "display_name", "description")
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "function": ("function", "arguments", "outputs", "allow_pickle"),
    "processing": ("code", "inputs", "outputs", "arguments", "env", "pass_env", "command", "property_files"),
    "training": ("code", "function", "hyperparameters", "inputs", "command", "env", "pass_env"),
    "condition": ("conditions", "if_steps", "else_steps"),
    "fail": ("error_message",),
    "register_model": (
        "model_data",
        "model_package_group_name",
        "approval_status",
        "model_metrics",
        "metadata",
    ),
}
_RETRY_KEYS = ("max_attempts", "interval_seconds", "backoff_rate", "max_interval_seconds")
_PROPERTY_FILE_KEYS = ("name", "output", "path")
_JSON_GET_KEYS = ("step", "property_file", "path")
_JOIN_KEYS = ("on", "values")
_CONDITION_KEYS = (*COMPARISONS, "in", "not", "and", "or")
# One-key mappings with these keys are expressions; ``{step, output}`` is recognised by its ``step`` key.
_EXPRESSION_KEYS = ("param", "step", "json_get", "join", "execution", "literal", *OPERATOR_NAMES)

# An alias bomb ("billion laughs") is a few lines of YAML that expand to billions of values; real
# specs have a few thousand, so stop long before the walk (or the step digests) take forever.
_MAX_VALUES = 200_000

# Where a problem was found: (step or None, field or None) -> line, as Pipeline(locations=...) takes it.
_Locations = dict[tuple[str | None, str | None], int]


# -- reading YAML with line numbers -------------------------------------------------------------
class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class _Seq(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _SpecLoader(_SafeBase):
    """PyYAML's safe loader (no Python tags) that builds :class:`_Map` / :class:`_Seq` with lines.

    Booleans are YAML 1.2's ``true``/``false`` only: YAML 1.1 would also read ``yes``, ``no``, ``on``
    and ``off`` as booleans, which turns ``join: {on: " "}`` and a step called ``no`` into ``True``
    and ``False``.
    """


_BOOL_TAG = "tag:yaml.org,2002:bool"
_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in _SafeBase.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 numbers: ``1e-3`` and ``1e999`` are floats (YAML 1.1 wants a dot, ``1.0e-3``, and would read
# them as strings, so a Float parameter's ``default: 1e-3`` was refused as text).
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _check_unique_keys(node: yaml.MappingNode) -> None:
    """Refuse a key written twice: PyYAML would silently keep the last value."""
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        identity = (key_node.tag, key_node.value)
        if identity in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key_node.value!r} (first on line {seen[identity]})",
                key_node.start_mark,
            )
        seen[identity] = key_node.start_mark.line + 1


def _construct_map(loader: _SpecLoader, node: yaml.MappingNode) -> Iterator[_Map]:
    _check_unique_keys(node)
    loader.flatten_mapping(node)  # merge keys (<<: *defaults); later keys override merged ones
    mapping = _Map(node.start_mark.line + 1)
    yield mapping  # before the items, so that an alias to this mapping inside itself resolves
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", key_node.start_mark
            ) from None
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _SpecLoader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    sequence = _Seq(node.start_mark.line + 1)
    yield sequence
    sequence.extend(loader.construct_object(child, deep=True) for child in node.value)
    sequence.item_lines.extend(child.start_mark.line + 1 for child in node.value)


_SpecLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_SpecLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _read_yaml(text: str, file: str) -> Any:
    """Parse ``text`` with the safe, line-keeping loader; YAML errors become :class:`SpecError`."""
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = "; ".join(str(part) for part in (error.context, error.problem) if part)
        raise SpecError(
            f"invalid YAML: {what}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,  # 1-based, as PyYAML prints it
        ) from None
    except yaml.YAMLError as error:
        raise SpecError(f"invalid YAML: {error}", file=file) from None
    except RecursionError:
        raise SpecError("invalid YAML: nested too deeply", file=file) from None
    finally:
        loader.dispose()


def _key_line(container: Any, key: Any, default: int | None = None) -> int | None:
    """The line of ``key`` in a loaded mapping, else of the mapping, else ``default``."""
    lines = getattr(container, "key_lines", {})
    return lines.get(key) or getattr(container, "line", None) or default


def _item_line(container: Any, index: int, default: int | None = None) -> int | None:
    """The line of item ``index`` of a loaded list, else of the list, else ``default``."""
    lines = getattr(container, "item_lines", [])
    return (lines[index] if index < len(lines) else None) or getattr(container, "line", None) or default


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _describe(value: Any) -> str:
    """``a string 'x'``, ``a list``... for "expected X, got Y" messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{_TYPE_NAMES.get(type(value), 'a ' + type(value).__name__)} {value!r}"


def _suggestion(word: Any, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` when a known word is close to ``word``, else ``""``."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def _find_line(
    locations: Mapping[tuple[str | None, str | None], int], step: str | None, field: str | None
) -> int | None:
    """The line of ``field`` of ``step``, else of its top-level key, else of the step.

    The same fallbacks as ``Pipeline._error``, so model errors raised here and there agree.
    """
    top_key = (field or "").split(".")[0].split("[")[0]
    return locations.get((step, field)) or locations.get((step, top_key)) or locations.get((step, None))


# -- turning the loaded YAML into the model -----------------------------------------------------
class _SpecParser:
    """Reads one loaded spec into model objects, recording the line of every step and field.

    :param file: the spec's name in error messages.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.step: str | None = None  # the step being read: every error names it
        self.parameters: dict[str, Parameter] = {}
        self.locations: _Locations = {}
        self._values_left = _MAX_VALUES

    # -- errors and locations ------------------------------------------------------------------
    def error(
        self, message: str, field: str | None, line: int | None, kind: type[SpecError] = SpecError
    ) -> SpecError:
        return kind(message, file=self.file, step=self.step, field=field, line=line)

    def relocate(self, error: SpecError, line: int | None = None) -> SpecError:
        """A model error completed with what the model did not know: the file, the step, the line."""
        step = error.step or self.step
        found = error.line or line or _find_line(self.locations, step, error.field)
        return type(error)(
            error.reason, file=error.file or self.file, step=step, field=error.field, line=found
        )

    def note(self, field: str | None, line: int | None) -> None:
        """Remember where ``field`` of the current step is, for errors the model raises later."""
        if line is not None:
            self.locations.setdefault((self.step, field), line)

    def note_keys(self, mapping: Mapping[Any, Any], prefix: str = "") -> None:
        for key in mapping:
            self.note(f"{prefix}{key}", _key_line(mapping, key))

    # -- shapes ----------------------------------------------------------------------------------
    def mapping(self, value: Any, field: str | None, line: int | None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"expected a mapping, got {_describe(value)}", field, line)
        return value

    def sequence(self, value: Any, field: str | None, line: int | None) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"expected a list, got {_describe(value)}", field, line)
        return value

    def text(self, value: Any, field: str | None, line: int | None) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {_describe(value)}", field, line)
        return value

    def number(self, value: Any, field: str, line: int | None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number, got {_describe(value)}", field, line)
        return value

    def strings(
        self, value: Any, field: str, line: int | None, *, pattern: re.Pattern[str] | None = None
    ) -> list[str]:
        """A list of strings; with ``pattern``, each must match it (names used in paths)."""
        items = self.sequence(value, field, line)
        result = []
        for index, item in enumerate(items):
            item_line = _item_line(items, index, line)
            text = self.text(item, f"{field}[{index}]", item_line)
            if pattern is not None and not pattern.fullmatch(text):
                raise self.error(_bad_name(text), f"{field}[{index}]", item_line)
            result.append(text)
        return result

    def check_keys(
        self, mapping: Mapping[Any, Any], allowed: Sequence[str], *, what: str, prefix: str = ""
    ) -> None:
        """Refuse keys not in ``allowed`` (a typo would otherwise be silently ignored)."""
        for key in mapping:
            if key not in allowed:
                raise self.error(
                    f"unknown key {key!r} in {what}{_suggestion(key, allowed)} (known: {', '.join(allowed)})"
                    + _comma_hint(key, mapping[key]),
                    f"{prefix}{key}",
                    _key_line(mapping, key),
                )

    def require(self, mapping: Mapping[Any, Any], key: str, *, what: str, prefix: str = "") -> Any:
        if mapping.get(key) is None:
            raise self.error(f"{what} needs '{key}'", f"{prefix}{key}", _key_line(mapping, key))
        return mapping[key]

    # -- optional fields of a mapping ------------------------------------------------------------
    def optional_text(self, mapping: Mapping[Any, Any], key: str, prefix: str = "") -> str | None:
        value = mapping.get(key)
        return None if value is None else self.text(value, f"{prefix}{key}", _key_line(mapping, key))

    def optional_strings(
        self, mapping: Mapping[Any, Any], key: str, *, pattern: re.Pattern[str] | None = None
    ) -> list[str] | None:
        value = mapping.get(key)
        return None if value is None else self.strings(value, key, _key_line(mapping, key), pattern=pattern)

    def value_map(
        self, mapping: Mapping[Any, Any], key: str, *, names: re.Pattern[str] | None = None
    ) -> dict[str, Any]:
        """A mapping of names to values (literals or expressions), e.g. ``arguments``."""
        raw = mapping.get(key)
        if raw is None:
            return {}
        items = self.mapping(raw, key, _key_line(mapping, key))
        result: dict[str, Any] = {}
        for name, item in items.items():
            line = _key_line(items, name)
            if not isinstance(name, str):
                raise self.error(f"the names in '{key}' must be strings, got {_describe(name)}", key, line)
            if names is not None and not names.fullmatch(name):
                raise self.error(_bad_name(name), f"{key}.{name}", line)
            result[name] = self.value(item, f"{key}.{name}", line)
        return result

    def value_list(self, mapping: Mapping[Any, Any], key: str) -> list[Any]:
        raw = mapping.get(key)
        if raw is None:
            return []
        items = self.sequence(raw, key, _key_line(mapping, key))
        return [
            self.value(item, f"{key}[{index}]", _item_line(items, index)) for index, item in enumerate(items)
        ]

    def optional_value(self, mapping: Mapping[Any, Any], key: str, default: Any = None) -> Any:
        return self.value(mapping[key], key, _key_line(mapping, key)) if key in mapping else default

    # -- values and expressions ------------------------------------------------------------------
    def spend(self, field: str, line: int | None) -> None:
        self._values_left -= 1
        if self._values_left < 0:
            raise self.error(f"the spec holds more than {_MAX_VALUES} values (an alias bomb?)", field, line)

    def value(self, raw: Any, field: str, line: int | None) -> Any:
        """A literal, an expression, or a dict/list whose items are read the same way."""
        self.spend(field, line)
        self.note(field, line)
        if isinstance(raw, Mapping):
            if _is_expression(raw):
                return self.expression(raw, field, line)
            return {
                key: self.value(item, f"{field}.{key}", _key_line(raw, key, line))
                for key, item in raw.items()
            }
        if isinstance(raw, list):
            return [
                self.value(item, f"{field}[{index}]", _item_line(raw, index, line))
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
            self.value(items[0], f"{field}[0]", _item_line(items, 0, line)),
            self.value(items[1], f"{field}[1]", _item_line(items, 1, line)),
        )

    def parameter_reference(self, raw: Any, field: str, line: int | None) -> Parameter:
        name = self.text(raw, field, line)
        if name not in self.parameters:
            declared = ", ".join(self.parameters) or "none"
            raise self.error(
                f"unknown parameter {name!r}{_suggestion(name, list(self.parameters))} (declared: {declared})",
                field.removesuffix(".param"),
                line,
            )
        return self.parameters[name]

    def step_output(self, raw: Mapping[Any, Any], field: str, line: int | None) -> StepOutput:
        self.check_keys(
            raw, ("step", "output"), what="a step output reference {step, output}", prefix=f"{field}."
        )
        step = self.text(raw["step"], f"{field}.step", line)
        output = self.require(
            raw, "output", what="a step output reference {step, output}", prefix=f"{field}."
        )
        return StepOutput(step, self.text(output, f"{field}.output", line))

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
                self.value(item, f"{field}.values[{i}]", _item_line(values, i, line))
                for i, item in enumerate(values)
            ],
        )

    def execution_variable(self, raw: Any, field: str, line: int | None) -> ExecutionVariable:
        name = self.text(raw, field, line)
        if name not in ExecutionVariable.NAMES:
            raise self.error(
                f"unknown execution variable {name!r}{_suggestion(name, ExecutionVariable.NAMES)} "
                f"(known: {', '.join(ExecutionVariable.NAMES)})",
                field,
                line,
            )
        return ExecutionVariable(name)

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
        if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in _CONDITION_KEYS:
            hint = _condition_hint(raw)
            raise self.error(
                f"expected a condition (a mapping with one key of {', '.join(_CONDITION_KEYS)}), "
                f"got {_describe(raw)}{hint}",
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
            return ConditionNot(self.condition(operand, inner, _key_line(raw, key, line)))
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
            self.condition(item, f"{field}[{i}]", _item_line(items, i, line)) for i, item in enumerate(items)
        ]
        return ConditionAnd(conditions) if key == "and" else ConditionOr(conditions)

    # -- parameters ------------------------------------------------------------------------------
    def read_parameters(self, raw: Any, line: int | None) -> list[Parameter]:
        if raw is None:
            return []
        items = self.sequence(raw, "parameters", line)
        first_lines: dict[str, int | None] = {}
        for index, item in enumerate(items):
            item_line = _item_line(items, index, line)
            parameter = self.read_parameter(item, index, item_line)
            if parameter.name in first_lines:
                raise self.error(
                    f"duplicate parameter {parameter.name!r} (first on line {first_lines[parameter.name]})",
                    f"parameters.{parameter.name}",
                    item_line,
                )
            first_lines[parameter.name] = item_line
            self.parameters[parameter.name] = parameter
        return list(self.parameters.values())

    def read_parameter(self, raw: Any, index: int, line: int | None) -> Parameter:
        spec = self.mapping(raw, f"parameters[{index}]", line)
        name = self.text(
            self.require(spec, "name", what="a parameter", prefix=f"parameters[{index}]."),
            f"parameters[{index}].name",
            _key_line(spec, "name", line),
        )
        field = f"parameters.{name}"
        self.note(field, line)
        self.note_keys(spec, prefix=f"{field}.")
        self.check_keys(spec, _PARAMETER_KEYS, what="a parameter", prefix=f"{field}.")
        type_name = self.text(
            self.require(spec, "type", what="a parameter", prefix=f"{field}."), f"{field}.type", line
        )
        if type_name not in PARAMETER_TYPES:
            raise self.error(
                f"unknown parameter type {type_name!r}{_suggestion(type_name, list(PARAMETER_TYPES))} "
                f"(known: {', '.join(PARAMETER_TYPES)})",
                f"{field}.type",
                _key_line(spec, "type"),
            )
        enum = spec.get("enum")
        if enum is not None:
            enum = self.literal(
                self.sequence(enum, f"{field}.enum", _key_line(spec, "enum")), f"{field}.enum", line
            )
        description = self.optional_text(spec, "description", prefix=f"{field}.")
        try:
            default = self.literal(spec.get("default"), f"{field}.default", line)
            secret = self.boolean(spec, "secret")
            return PARAMETER_TYPES[type_name](name, default, enum, description, secret=secret)
        except SpecError as error:
            raise self.relocate(error, _key_line(spec, _parameter_key(error.field))) from None

    # -- steps -----------------------------------------------------------------------------------
    def read_steps(self, raw: Any, line: int | None) -> list[Step]:
        items = self.sequence(raw, "steps", line) if raw is not None else []
        first_lines: dict[str, int | None] = {}
        steps = []
        for index, item in enumerate(items):
            steps.append(self.read_step(item, index, _item_line(items, index, line), first_lines))
            self.step = None
        return steps

    def read_step(self, raw: Any, index: int, line: int | None, first_lines: dict[str, int | None]) -> Step:
        spec = self.mapping(raw, f"steps[{index}]", line)
        name = self.step_name(spec, index, line)
        self.step = name
        if name in first_lines:
            raise self.error(
                f"duplicate step name (first defined on line {first_lines[name]})",
                "name",
                _key_line(spec, "name"),
                PipelineGraphError,
            )
        first_lines[name] = line
        self.note(None, line)
        self.note_keys(spec)
        kind = self.text(self.require(spec, "type", what="a step"), "type", _key_line(spec, "type"))
        if kind not in STEP_KINDS:
            raise self.error(
                f"unknown step type {kind!r}{_suggestion(kind, list(STEP_KINDS))} (known: {', '.join(STEP_KINDS)})",
                "type",
                _key_line(spec, "type"),
            )
        self.check_keys(spec, _COMMON_STEP_KEYS + _STEP_KEYS[kind], what=f"a {kind} step")
        options = {**_STEP_READERS[kind](self, spec), **self.common_options(spec)}
        try:
            return STEP_KINDS[kind](name, **options)
        except SpecError as error:
            raise self.relocate(error) from None
        # A value the checks above let through is still the spec's fault, not a crash.
        except (TypeError, ValueError) as error:
            raise self.error(f"invalid {kind} step: {error}", None, line) from None

    def step_name(self, spec: Mapping[Any, Any], index: int, line: int | None) -> str:
        name = self.require(spec, "name", what="a step", prefix=f"steps[{index}].")
        name_line = _key_line(spec, "name", line)
        if not isinstance(name, str):
            raise self.error(
                f"a step name must be a string, got {_describe(name)}", f"steps[{index}].name", name_line
            )
        if not STEP_NAME.fullmatch(name):
            # Checked before anything else: the name becomes a task id and a folder of the artifact store.
            self.step = name
            raise self.error(
                f"invalid step name {name!r}: use letters, digits, '_', '-', '.' (not first), at most 200",
                "name",
                name_line,
            )
        return name

    def common_options(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        return {
            "depends_on": self.optional_strings(spec, "depends_on"),
            "retry_policy": self.retry(spec),
            "display_name": self.optional_text(spec, "display_name"),
            "description": self.optional_text(spec, "description"),
        }

    def retry(self, spec: Mapping[Any, Any]) -> RetryPolicy | None:
        if spec.get("retry") is None:
            return None
        line = _key_line(spec, "retry")
        retry = self.mapping(spec["retry"], "retry", line)
        self.check_keys(retry, _RETRY_KEYS, what="retry", prefix="retry.")
        self.note_keys(retry, prefix="retry.")
        options: dict[str, Any] = {}
        for key, value in retry.items():
            field, key_line = f"retry.{key}", _key_line(retry, key)
            if key == "max_attempts" and (isinstance(value, bool) or not isinstance(value, int)):
                raise self.error(f"expected an integer, got {_describe(value)}", field, key_line)
            if value is not None or key != "max_interval_seconds":
                options[key] = self.number(value, field, key_line)
        try:
            return RetryPolicy(**options)
        except SpecError as error:  # a range (backoff_rate >= 1...): the model's rule, our line
            raise self.relocate(error) from None

    def function_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        self.note("code", _key_line(spec, "function"))  # the model checks a "file.py:f" file as "code"
        options: dict[str, Any] = {
            "function": self.text(
                self.require(spec, "function", what="a function step"),
                "function",
                _key_line(spec, "function"),
            ),
            "arguments": self.value_map(spec, "arguments"),
            "allow_pickle": self.boolean(spec, "allow_pickle"),
        }
        outputs = self.optional_strings(spec, "outputs", pattern=IO_NAME)
        if outputs is not None:
            options["outputs"] = outputs
        return options

    def processing_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        inputs = self.value_map(spec, "inputs", names=IO_NAME)
        job_arguments = self.value_list(spec, "arguments")
        # The model calls them job_arguments[i]: its errors must find the same lines.
        self.note("job_arguments", _key_line(spec, "arguments"))
        for index in range(len(job_arguments)):
            self.note(f"job_arguments[{index}]", _item_line(spec["arguments"], index))
        return {
            "code": self.text(
                self.require(spec, "code", what="a processing step"), "code", _key_line(spec, "code")
            ),
            "inputs": [ProcessingInput(name, source) for name, source in inputs.items()],
            "outputs": [
                ProcessingOutput(name)
                for name in self.optional_strings(spec, "outputs", pattern=IO_NAME) or []
            ],
            "job_arguments": job_arguments,
            "env": self.value_map(spec, "env"),
            "pass_env": self.optional_strings(spec, "pass_env"),
            "command": self.optional_strings(spec, "command"),
            "property_files": self.property_files(spec),
        }

    def property_files(self, spec: Mapping[Any, Any]) -> list[PropertyFile]:
        raw = spec.get("property_files")
        if raw is None:
            return []
        items = self.sequence(raw, "property_files", _key_line(spec, "property_files"))
        result: list[PropertyFile] = []
        for index, item in enumerate(items):
            field, line = f"property_files[{index}]", _item_line(items, index)
            entry = self.mapping(item, field, line)
            self.check_keys(entry, _PROPERTY_FILE_KEYS, what="a property file", prefix=f"{field}.")
            name, output, path = (
                self.text(
                    self.require(entry, key, what="a property file", prefix=f"{field}."),
                    f"{field}.{key}",
                    _key_line(entry, key),
                )
                for key in _PROPERTY_FILE_KEYS
            )
            if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
                # The file is read from inside the output directory; it must not point outside it.
                raise self.error(
                    f"the path must stay inside output {output!r}, got {path!r}",
                    f"{field}.path",
                    _key_line(entry, "path"),
                )
            if name in (known.name for known in result):
                raise self.error(f"duplicate property file {name!r}", f"{field}.name", line)
            result.append(PropertyFile(name, output, path))
        return result

    def training_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        if "code" not in spec:
            self.note("code", _key_line(spec, "function"))  # as for function steps
        return {
            "code": self.optional_text(spec, "code"),
            "function": self.optional_text(spec, "function"),
            "hyperparameters": self.value_map(spec, "hyperparameters"),
            "inputs": self.value_map(spec, "inputs", names=IO_NAME),
            "command": self.optional_strings(spec, "command"),
            "env": self.value_map(spec, "env"),
            "pass_env": self.optional_strings(spec, "pass_env"),
        }

    def condition_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        raw = spec.get("conditions")
        items = self.sequence(raw, "conditions", _key_line(spec, "conditions")) if raw is not None else []
        return {
            "conditions": [
                self.condition(item, f"conditions[{index}]", _item_line(items, index))
                for index, item in enumerate(items)
            ],
            "if_steps": self.optional_strings(spec, "if_steps"),
            "else_steps": self.optional_strings(spec, "else_steps"),
        }

    def fail_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        return {"error_message": self.optional_value(spec, "error_message", "")}

    def register_model_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        for key in ("model_data", "model_package_group_name"):
            self.require(spec, key, what="a register_model step")
        return {
            "model_data": self.optional_value(spec, "model_data"),
            "model_package_group_name": self.optional_value(spec, "model_package_group_name"),
            "approval_status": self.optional_value(spec, "approval_status", "PendingManualApproval"),
            "model_metrics": self.optional_value(spec, "model_metrics"),
            "metadata": self.value_map(spec, "metadata"),
        }

    def boolean(self, spec: Mapping[Any, Any], key: str) -> bool:
        value = spec.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {_describe(value)}", key, _key_line(spec, key))
        return value

    # -- the pipeline ----------------------------------------------------------------------------
    def read_pipeline(self, document: Any, base_dir: str | os.PathLike[str] | None) -> Pipeline:
        if document is None:
            raise self.error("the spec is empty: expected a mapping with 'name' and 'steps'", None, 1)
        top = self.mapping(document, None, getattr(document, "line", 1))
        self.check_keys(top, _TOP_KEYS, what="the pipeline")
        self.note_keys(top)
        name = self.require(top, "name", what="a pipeline")
        if "steps" not in top:
            raise self.error("a pipeline needs 'steps'", "steps", getattr(top, "line", 1))
        tags = self.optional_strings(top, "tags")
        parameters = self.read_parameters(top.get("parameters"), _key_line(top, "parameters"))
        steps = self.read_steps(top["steps"], _key_line(top, "steps"))
        return Pipeline(
            name,
            parameters,
            steps,
            description=self.optional_text(top, "description"),
            base_dir=Path(base_dir) if base_dir is not None else None,
            source_file=self.file,
            artifact_store=self.optional_text(top, "artifact_store"),
            tags=tags,
            locations=self.locations,
        )


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
    return _suggestion(key, _CONDITION_KEYS)


def _comma_hint(key: Any, value: Any) -> str:
    """Explain the usual cause of a key like ``file:// or s3://)`` without a value.

    In a flow mapping (``{name: X, description: a, b}``) a comma ends the value and starts a new key.
    """
    if value is None and isinstance(key, str) and not key.isidentifier():
        return "; if it is the rest of a value with a comma inside {...}, quote that value"
    return ""


def _parameter_key(field: str | None) -> str:
    """The spec key behind a model error of a parameter: the model names the field, not the line."""
    if (field or "").endswith(".default"):
        return "default"
    return "enum" if "enum" in (field or "") else "name"


def _bad_name(name: str) -> str:
    return f"invalid name {name!r}: use a letter or '_' then letters, digits, '_' or '-' (at most 64)"


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


_EXPRESSION_READERS: dict[str, Callable[[_SpecParser, Any, str, int | None], Any]] = {
    "param": _SpecParser.parameter_reference,
    "json_get": _SpecParser.json_get,
    "join": _SpecParser.join,
    "execution": _SpecParser.execution_variable,
    "literal": _SpecParser.literal,
}

_STEP_READERS: dict[str, Callable[[_SpecParser, Mapping[Any, Any]], dict[str, Any]]] = {
    "function": _SpecParser.function_step,
    "processing": _SpecParser.processing_step,
    "training": _SpecParser.training_step,
    "condition": _SpecParser.condition_step,
    "fail": _SpecParser.fail_step,
    "register_model": _SpecParser.register_model_step,
}


# -- public API ---------------------------------------------------------------------------------
def load_pipeline_text(
    text: str,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    check_files: bool = True,
) -> Pipeline:
    """Read a pipeline spec from a string and return the validated :class:`Pipeline`.

    :param text: the YAML spec.
    :param file: how error messages name the spec.
    :param base_dir: the folder that relative script and data paths start from.
    :param check_files: whether script files must exist.
    :raises SpecError: naming the file, the step, the field and the line of the first problem.
    """
    document = _read_yaml(text, file)
    parser = _SpecParser(file)
    try:
        pipeline = parser.read_pipeline(document, base_dir)
    except RecursionError:  # a YAML alias that contains itself, or absurd nesting
        raise SpecError("the spec nests too deeply (does a YAML alias refer to itself?)", file=file) from None
    try:
        return pipeline.validate(check_files=check_files)
    except SpecError as error:
        raise _as_spec_field(error, pipeline) from None


# The model's name for a field -> the key the spec has, by step kind: errors name what the user wrote.
_SPEC_FIELDS = {
    ("processing", "job_arguments"): "arguments",
    ("function", "code"): "function",  # the file of a "file.py:attribute" function
}


def _as_spec_field(error: SpecError, pipeline: Pipeline) -> SpecError:
    """``error`` with the model's field name replaced by the spec's key, where they differ."""
    step = pipeline.steps.get(error.step or "")
    field = error.field or ""
    if step is None:
        return error
    kind = step.kind
    if isinstance(step, TrainingStep) and step.code is None:
        kind = "function"  # a training step with a function: its file is checked as "code" too
    for (step_kind, model_field), spec_key in _SPEC_FIELDS.items():
        if kind == step_kind and field.split("[")[0].split(".")[0] == model_field:
            field = spec_key + field[len(model_field) :]
            return type(error)(error.reason, file=error.file, step=error.step, field=field, line=error.line)
    return error


def load_pipeline_file(path: str | os.PathLike[str], *, check_files: bool = True) -> Pipeline:
    """Read a pipeline spec file and return the validated :class:`Pipeline`.

    Relative script and data paths in the spec start from the spec's folder.

    :param path: the ``*.pipeline.yaml`` file.
    :param check_files: whether script files must exist.
    :raises SpecError: naming the file, the step, the field and the line of the first problem.
    """
    file = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(
            f"the spec is not UTF-8 text ({error.reason} at byte {error.start})", file=file
        ) from None
    except OSError as error:
        raise SpecError(f"cannot read the spec: {error.strerror or error}", file=file) from None
    return load_pipeline_text(text, file=file, base_dir=Path(path).absolute().parent, check_files=check_files)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


def discover_spec_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every pipeline spec (``*.pipeline.yaml``, ``*.pipeline.yml``) under ``folder``, sorted.

    Hidden files and folders (``.git``, ``.venv``...) and ``__pycache__`` are skipped without being
    walked. Folder symlinks are followed (as Airflow does for DAG files), but each real folder is
    read once: no endless loops, and no spec found twice (which would be a duplicate pipeline name).

    :param folder: the folder to search recursively; a missing folder has no specs.
    """
    found: list[Path] = []
    visited: set[str] = set()
    for directory, subdirectories, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in visited:
            subdirectories[:] = []
            continue
        visited.add(real)
        # Real folders before symlinks to them, so a spec is found under its real path.
        subdirectories[:] = sorted(
            (name for name in subdirectories if not _hidden(name)),
            key=lambda name: (os.path.islink(os.path.join(directory, name)), name),
        )
        found += [
            Path(directory, name) for name in files if name.endswith(SPEC_SUFFIXES) and not _hidden(name)
        ]
    return sorted(found)


# ``name: value`` at the start of a line, the value plain or simply quoted. Deliberately strict: a
# value it cannot read for sure gives None, and the caller then does the full parse.
_NAME_LINE = re.compile(
    r"""^name[ \t]*:[ \t]+(?:"([^"\\]*)"|'([^']*)'|([^\s#"'&*!|>%@`{}\[\],][^\s#]*))[ \t]*(?:[ \t]#.*)?$"""
)


def peek_pipeline_name(path: str | os.PathLike[str]) -> str | None:
    """The spec's top-level ``name:`` read with a regular expression, without parsing the YAML.

    Called for every spec when an Airflow worker needs a single DAG, so it must be cheap; it reads
    lines up to the first ``name:`` at the start of a line (nested keys are indented).

    :param path: the spec file.
    :returns: the name, or None if there is no such line, it is not a simple value, or the file
        cannot be read.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            for line in handle:
                match = _NAME_LINE.match(line.rstrip("\r\n"))
                if match:
                    return next(group for group in match.groups() if group is not None)
    except OSError:
        return None
    return None
