"""Typed pipeline parameters, named as in SageMaker (``ParameterInteger(name=..., default_value=...)``).

A parameter is also an expression: use it wherever a step takes a value, combine it with arithmetic.
Its JSON schema becomes an Airflow ``Param`` so the trigger form shows and validates it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from airflow_provider_mlpipe.exceptions import ParameterValidationError, SpecError
from airflow_provider_mlpipe.model.expressions import EvaluationContext, Reference

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Integers Airflow can hold: its serialization (msgspec) and its DB columns stop at 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_int64(value: int, what: str) -> int:
    """``value`` if it fits in 64 bits (signed), else a :class:`ParameterValidationError` naming ``what``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ParameterValidationError(
            f"{what} must fit in 64 bits (-2**63 to 2**63-1) for Airflow to store it, got {shown(value)}"
        )
    return value


def check_finite(value: float, what: str) -> float:
    """``value`` as a float if it is a finite number (not NaN, not infinite), else a
    :class:`ParameterValidationError` naming ``what``: Airflow's params and JSON refuse the others."""
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ParameterValidationError(f"{what} must be a finite number, got {shown(value)}")
    return number


def shown(value: Any) -> str:
    """``repr(value)``, with a huge number shortened to its first digits and length."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} digits)"


class Parameter(Reference):
    """A typed pipeline parameter; subclasses fix the type.

    :param name: the parameter name, a letter or ``_`` then letters, digits, ``_``.
    :param default_value: the value used when a run does not give one; ``None`` makes it required.
    :param enum_values: the allowed values, if only some are allowed (shown as a drop-down).
    :param description: shown in the trigger form.
    :param secret: the value is a credential: steps keep it out of their logs (Airflow's secrets
        masker replaces it with ``***``). It is still stored in the run's conf, which anyone who can
        read the pipeline's runs sees; for real credentials prefer a step's ``pass_env``.
    """

    type_name: ClassVar[str] = ""
    json_type: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        default_value: Any = None,
        enum_values: list[Any] | None = None,
        description: str | None = None,
        secret: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SpecError(
                f"invalid parameter name {name!r}: use a letter or _ then letters, digits or _",
                field="parameters",
            )
        self.name = name
        self.description = description
        self.secret = bool(secret)
        self.enum_values = None
        if enum_values is not None:
            self.enum_values = [self._checked(value, what="enum value") for value in enum_values]
        self.default_value = None if default_value is None else self._checked(default_value, what="default")

    @property
    def required(self) -> bool:
        """A parameter without a default must be given by every run."""
        return self.default_value is None

    def _checked(self, value: Any, *, what: str) -> Any:
        try:
            return self.coerce(value)
        except ParameterValidationError as error:
            raise SpecError(str(error), field=f"parameters.{self.name}.{what}") from None

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise :class:`ParameterValidationError`.

        Values are not converted between types ("5" is not an integer): a form or CLI that has text
        must convert it first (see :meth:`parse_text`).
        """
        if not self._accepts(value):
            raise ParameterValidationError(
                f"parameter {self.name!r} expects {self.type_name.lower()}, got {type(value).__name__} {value!r}"
            )
        value = self._normalise(value)
        if self.enum_values is not None and value not in self.enum_values:
            raise ParameterValidationError(
                f"parameter {self.name!r} must be one of {self.enum_values!r}, got {value!r}"
            )
        return value

    def parse_text(self, text: str) -> Any:
        """Convert command-line text (``--param MaxDepth=8``) to this type, then validate it."""
        return self.coerce(text)

    def _accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def _normalise(self, value: Any) -> Any:
        return value

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the Airflow ``Param`` (without the default)."""
        schema: dict[str, Any] = {"type": self.json_type}
        if self.enum_values is not None:
            schema["enum"] = list(self.enum_values)
        return schema

    def evaluate(self, context: EvaluationContext) -> Any:
        return context.parameter(self.name)

    def to_dict(self) -> Any:
        return {"param": self.name}

    def definition(self) -> dict[str, Any]:
        """The declaration (type, default, choices), for comparing pipelines."""
        return {
            "name": self.name,
            "type": self.type_name,
            "default_value": self.default_value,
            "enum_values": self.enum_values,
            "description": self.description,
            # Only when set: pipelines declared before the option existed compare equal.
            **({"secret": True} if self.secret else {}),
        }

    def children(self) -> Iterator[Any]:
        return iter(())


class ParameterString(Parameter):
    """A string parameter."""

    type_name = "String"
    json_type = "string"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, str)


class ParameterInteger(Parameter):
    """An integer parameter. Booleans and floats are refused."""

    type_name = "Integer"
    json_type = "integer"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def _normalise(self, value: Any) -> Any:
        return check_int64(value, f"parameter {self.name!r}")

    def parse_text(self, text: str) -> Any:
        try:
            return self.coerce(int(text.strip()))
        except ValueError:
            raise ParameterValidationError(f"parameter {self.name!r} expects integer, got {text!r}") from None


class ParameterFloat(Parameter):
    """A floating-point parameter; integers are accepted and become floats."""

    type_name = "Float"
    json_type = "number"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def _normalise(self, value: Any) -> Any:
        return check_finite(value, f"parameter {self.name!r}")

    def parse_text(self, text: str) -> Any:
        try:
            return self.coerce(float(text.strip()))
        except ValueError:
            raise ParameterValidationError(f"parameter {self.name!r} expects float, got {text!r}") from None


class ParameterBoolean(Parameter):
    """A boolean parameter."""

    type_name = "Boolean"
    json_type = "boolean"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def parse_text(self, text: str) -> Any:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return self.coerce(True)
        if lowered in ("false", "0", "no"):
            return self.coerce(False)
        raise ParameterValidationError(f"parameter {self.name!r} expects boolean, got {text!r}")


class ParameterList(Parameter):
    """A list parameter (JSON array): what a fan-out step runs over (``for_each: {param: Depths}``).

    Items are JSON values (numbers, strings, booleans, lists, mappings); floats must be finite.
    """

    type_name = "List"
    json_type = "array"

    def _accepts(self, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def _normalise(self, value: Any) -> Any:
        items = list(value)
        for item in items:
            _check_json_item(item, f"parameter {self.name!r}")
        return items

    def parse_text(self, text: str) -> Any:
        """``[3, 5, 8]`` (JSON), or comma-separated numbers/words: ``3,5,8``."""
        import json

        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return self.coerce(json.loads(stripped))
            except ValueError:
                raise ParameterValidationError(
                    f"parameter {self.name!r} expects a JSON list, got {text!r}"
                ) from None
        return self.coerce([_scalar(part.strip()) for part in stripped.split(",") if part.strip()])


def _scalar(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def _check_json_item(item: Any, what: str) -> None:
    if item is None or isinstance(item, (bool, str)):
        return
    if isinstance(item, int):
        check_int64(item, what)
    elif isinstance(item, float):
        check_finite(item, what)
    elif isinstance(item, (list, tuple)):
        for value in item:
            _check_json_item(value, what)
    elif isinstance(item, Mapping) and all(isinstance(key, str) for key in item):
        for value in item.values():
            _check_json_item(value, what)
    else:
        raise ParameterValidationError(f"{what}: list items must be JSON values, got {item!r}")


PARAMETER_TYPES: dict[str, type[Parameter]] = {
    cls.type_name: cls
    for cls in (ParameterString, ParameterInteger, ParameterFloat, ParameterBoolean, ParameterList)
}


def resolve_parameters(parameters: Mapping[str, Parameter], given: Mapping[str, Any]) -> dict[str, Any]:
    """Return every parameter's run-time value: given values validated, defaults for the rest.

    :param parameters: the pipeline's parameters by name.
    :param given: values given for this run (``dag_run.conf``, ``--param``); unknown names are refused.
    """
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        raise ParameterValidationError(
            f"unknown parameter(s) {', '.join(unknown)}; the pipeline has: {', '.join(parameters) or 'none'}"
        )
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, parameter in parameters.items():
        if name in given and given[name] is not None:
            try:
                values[name] = parameter.coerce(given[name])
            except ParameterValidationError as error:
                errors.append(str(error))
        elif parameter.required:
            errors.append(f"parameter {name!r} is required and has no default")
        else:
            values[name] = parameter.default_value
    if errors:
        raise ParameterValidationError("; ".join(errors))
    return values
