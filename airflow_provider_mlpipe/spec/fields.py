"""Reading the fields of a loaded spec: shapes, optional keys, names, and the line of each field.

Every error names the file, the step being read, the field and the line. The model raises its own
errors later (in ``Pipeline.validate``); :meth:`FieldReader.relocate` and the ``locations`` recorded
here give them the same file, step and line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.parameters import Parameter
from airflow_provider_mlpipe.spec.yaml_source import line_of_item, line_of_key

# An alias bomb ("billion laughs") is a few lines of YAML that expand to billions of values; real
# specs have a few thousand, so stop long before the walk (or the step digests) take forever.
MAX_VALUES = 200_000

# Where a problem was found: (step or None, field or None) -> line, as Pipeline(locations=...) takes it.
Locations = dict[tuple[str | None, str | None], int]

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def describe(value: Any) -> str:
    """``a string 'x'``, ``a list``... for "expected X, got Y" messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{_TYPE_NAMES.get(type(value), 'a ' + type(value).__name__)} {value!r}"


def suggestion(word: Any, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` when a known word is close to ``word``, else ``""``."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def find_line(
    locations: Mapping[tuple[str | None, str | None], int], step: str | None, field: str | None
) -> int | None:
    """The line of ``field`` of ``step``, else of its top-level key, else of the step.

    The same fallbacks as ``Pipeline._error``, so model errors raised here and there agree.
    """
    top_key = (field or "").split(".")[0].split("[")[0]
    return locations.get((step, field)) or locations.get((step, top_key)) or locations.get((step, None))


def bad_name(name: str) -> str:
    return f"invalid name {name!r}: use a letter or '_' then letters, digits, '_' or '-' (at most 64)"


def _comma_hint(key: Any, value: Any) -> str:
    """Explain the usual cause of a key like ``file:// or s3://)`` without a value.

    In a flow mapping (``{name: X, description: a, b}``) a comma ends the value and starts a new key.
    """
    if value is None and isinstance(key, str) and not key.isidentifier():
        return "; if it is the rest of a value with a comma inside {...}, quote that value"
    return ""


class FieldReader:
    """The fields of a loaded spec: shapes, names, optional keys, and where each one is (lines).

    The readers of expressions, steps and the pipeline build on it (``SpecReader`` puts them together).

    :param file: the spec's name in error messages.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.step: str | None = None  # the step being read: every error names it
        self.parameters: dict[str, Parameter] = {}
        self.locations: Locations = {}
        self._values_left = MAX_VALUES

    # -- errors and locations ------------------------------------------------------------------
    def error(
        self, message: str, field: str | None, line: int | None, kind: type[SpecError] = SpecError
    ) -> SpecError:
        return kind(message, file=self.file, step=self.step, field=field, line=line)

    def relocate(self, error: SpecError, line: int | None = None) -> SpecError:
        """A model error completed with what the model did not know: the file, the step, the line."""
        step = error.step or self.step
        found = error.line or line or find_line(self.locations, step, error.field)
        return type(error)(
            error.reason, file=error.file or self.file, step=step, field=error.field, line=found
        )

    def note(self, field: str | None, line: int | None) -> None:
        """Remember where ``field`` of the current step is, for errors the model raises later."""
        if line is not None:
            self.locations.setdefault((self.step, field), line)

    def note_keys(self, mapping: Mapping[Any, Any], prefix: str = "") -> None:
        for key in mapping:
            self.note(f"{prefix}{key}", line_of_key(mapping, key))

    # -- shapes ----------------------------------------------------------------------------------
    def mapping(self, value: Any, field: str | None, line: int | None) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise self.error(f"expected a mapping, got {describe(value)}", field, line)
        return value

    def sequence(self, value: Any, field: str | None, line: int | None) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"expected a list, got {describe(value)}", field, line)
        return value

    def text(self, value: Any, field: str | None, line: int | None) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {describe(value)}", field, line)
        return value

    def number(self, value: Any, field: str, line: int | None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number, got {describe(value)}", field, line)
        return value

    def strings(
        self, value: Any, field: str, line: int | None, *, pattern: re.Pattern[str] | None = None
    ) -> list[str]:
        """A list of strings; with ``pattern``, each must match it (names used in paths)."""
        items = self.sequence(value, field, line)
        result = []
        for index, item in enumerate(items):
            item_line = line_of_item(items, index, line)
            text = self.text(item, f"{field}[{index}]", item_line)
            if pattern is not None and not pattern.fullmatch(text):
                raise self.error(bad_name(text), f"{field}[{index}]", item_line)
            result.append(text)
        return result

    def check_keys(
        self, mapping: Mapping[Any, Any], allowed: Sequence[str], *, what: str, prefix: str = ""
    ) -> None:
        """Refuse keys not in ``allowed`` (a typo would otherwise be silently ignored)."""
        for key in mapping:
            if key not in allowed:
                raise self.error(
                    f"unknown key {key!r} in {what}{suggestion(key, allowed)} (known: {', '.join(allowed)})"
                    + _comma_hint(key, mapping[key]),
                    f"{prefix}{key}",
                    line_of_key(mapping, key),
                )

    def require(self, mapping: Mapping[Any, Any], key: str, *, what: str, prefix: str = "") -> Any:
        if mapping.get(key) is None:
            raise self.error(f"{what} needs '{key}'", f"{prefix}{key}", line_of_key(mapping, key))
        return mapping[key]

    # -- optional fields of a mapping ------------------------------------------------------------
    def optional_text(self, mapping: Mapping[Any, Any], key: str, prefix: str = "") -> str | None:
        value = mapping.get(key)
        return None if value is None else self.text(value, f"{prefix}{key}", line_of_key(mapping, key))

    def optional_strings(
        self, mapping: Mapping[Any, Any], key: str, *, pattern: re.Pattern[str] | None = None
    ) -> list[str] | None:
        value = mapping.get(key)
        return None if value is None else self.strings(value, key, line_of_key(mapping, key), pattern=pattern)

    def value_map(
        self, mapping: Mapping[Any, Any], key: str, *, names: re.Pattern[str] | None = None
    ) -> dict[str, Any]:
        """A mapping of names to values (literals or expressions), e.g. ``arguments``."""
        raw = mapping.get(key)
        if raw is None:
            return {}
        items = self.mapping(raw, key, line_of_key(mapping, key))
        result: dict[str, Any] = {}
        for name, item in items.items():
            line = line_of_key(items, name)
            if not isinstance(name, str):
                raise self.error(f"the names in '{key}' must be strings, got {describe(name)}", key, line)
            if names is not None and not names.fullmatch(name):
                raise self.error(bad_name(name), f"{key}.{name}", line)
            result[name] = self.value(item, f"{key}.{name}", line)
        return result

    def value_list(self, mapping: Mapping[Any, Any], key: str) -> list[Any]:
        raw = mapping.get(key)
        if raw is None:
            return []
        items = self.sequence(raw, key, line_of_key(mapping, key))
        return [
            self.value(item, f"{key}[{index}]", line_of_item(items, index))
            for index, item in enumerate(items)
        ]

    def optional_value(self, mapping: Mapping[Any, Any], key: str, default: Any = None) -> Any:
        return self.value(mapping[key], key, line_of_key(mapping, key)) if key in mapping else default

    def value(self, raw: Any, field: str, line: int | None) -> Any:
        """A literal or an expression (see ``ExpressionReader.value``)."""
        raise NotImplementedError
