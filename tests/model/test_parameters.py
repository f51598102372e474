"""Typed pipeline parameters: what each type accepts, CLI text parsing, and run-time resolution."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import ParameterValidationError, SpecError
from airflow_provider_mlpipe.model.parameters import (
    PARAMETER_TYPES,
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterList,
    ParameterString,
    resolve_parameters,
)
from tests.model.fakes import FakeContext

# -- coerce: accepted and refused values ---------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (ParameterString("S"), "abc", "abc"),
        (ParameterString("S"), "", ""),
        (ParameterInteger("I"), 5, 5),
        (ParameterInteger("I"), 0, 0),
        (ParameterInteger("I"), -3, -3),
        (ParameterFloat("F"), 0.5, 0.5),
        (ParameterFloat("F"), 3, 3.0),
        (ParameterBoolean("B"), True, True),
        (ParameterBoolean("B"), False, False),
    ],
)
def test_coerce_accepts_values_of_the_parameter_type(parameter: Parameter, value: Any, expected: Any) -> None:
    result = parameter.coerce(value)

    assert result == expected
    assert type(result) is type(expected)


def test_float_parameter_turns_an_integer_into_a_float() -> None:
    result = ParameterFloat("LearningRate").coerce(1)

    assert isinstance(result, float)
    assert result == 1.0


@pytest.mark.parametrize(
    ("parameter", "value", "type_word"),
    [
        (ParameterInteger("I"), True, "integer"),
        (ParameterInteger("I"), 5.0, "integer"),
        (ParameterInteger("I"), "5", "integer"),
        (ParameterInteger("I"), None, "integer"),
        (ParameterFloat("F"), True, "float"),
        (ParameterFloat("F"), "0.5", "float"),
        (ParameterBoolean("B"), 1, "boolean"),
        (ParameterBoolean("B"), 0, "boolean"),
        (ParameterBoolean("B"), "true", "boolean"),
        (ParameterString("S"), 5, "string"),
        (ParameterString("S"), b"bytes", "string"),
    ],
)
def test_coerce_refuses_values_of_other_types(parameter: Parameter, value: Any, type_word: str) -> None:
    with pytest.raises(ParameterValidationError) as raised:
        parameter.coerce(value)

    message = str(raised.value)
    assert f"parameter {parameter.name!r} expects {type_word}" in message
    assert f"got {type(value).__name__} {value!r}" in message


def test_integer_refuses_bool_with_a_message_naming_the_bool() -> None:
    with pytest.raises(
        ParameterValidationError, match=r"parameter 'MaxDepth' expects integer, got bool True"
    ):
        ParameterInteger("MaxDepth").coerce(True)


# -- enum values ---------------------------------------------------------------------------


def test_enum_accepts_listed_values_and_refuses_others() -> None:
    instance = ParameterString("InstanceType", default_value="small", enum_values=["small", "large"])

    assert instance.coerce("large") == "large"
    with pytest.raises(ParameterValidationError) as raised:
        instance.coerce("medium")
    assert str(raised.value) == "parameter 'InstanceType' must be one of ['small', 'large'], got 'medium'"


def test_float_enum_values_are_normalised_to_floats() -> None:
    rate = ParameterFloat("Rate", enum_values=[1, 0.5])

    assert rate.enum_values == [1.0, 0.5]
    assert all(type(value) is float for value in rate.enum_values)
    assert rate.coerce(1) == 1.0


def test_enum_value_of_the_wrong_type_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as raised:
        ParameterInteger("Depth", enum_values=[4, "8"])

    assert raised.value.field == "parameters.Depth.enum value"
    assert "parameter 'Depth' expects integer, got str '8'" in str(raised.value)


def test_default_outside_the_enum_is_a_spec_error() -> None:
    with pytest.raises(SpecError) as raised:
        ParameterString("InstanceType", default_value="huge", enum_values=["small", "large"])

    assert raised.value.field == "parameters.InstanceType.default"
    assert "must be one of ['small', 'large'], got 'huge'" in str(raised.value)


# -- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter_class", "default"),
    [
        (ParameterInteger, "5"),
        (ParameterInteger, 2.5),
        (ParameterInteger, True),
        (ParameterFloat, "0.1"),
        (ParameterBoolean, "false"),
        (ParameterString, 3),
    ],
)
def test_default_of_the_wrong_type_is_a_spec_error_naming_the_parameter(
    parameter_class: type[Parameter], default: Any
) -> None:
    with pytest.raises(SpecError) as raised:
        parameter_class("MaxDepth", default_value=default)

    assert raised.value.field == "parameters.MaxDepth.default"
    assert "field 'parameters.MaxDepth.default'" in str(raised.value)
    assert f"expects {parameter_class.type_name.lower()}" in str(raised.value)


def test_default_is_coerced_to_the_parameter_type() -> None:
    assert ParameterFloat("Rate", default_value=2).default_value == 2.0
    assert type(ParameterFloat("Rate", default_value=2).default_value) is float


@pytest.mark.parametrize(
    ("parameter", "required"),
    [
        (ParameterString("S"), True),
        (ParameterString("S", default_value=""), False),
        (ParameterInteger("I", default_value=0), False),
        (ParameterBoolean("B", default_value=False), False),
        (ParameterFloat("F", default_value=0.0), False),
    ],
)
def test_only_a_parameter_without_default_is_required(parameter: Parameter, required: bool) -> None:
    assert parameter.required is required


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MaxDepth", "_private", "a", "x1_y2", "A" * 128])
def test_valid_parameter_names(name: str) -> None:
    assert ParameterString(name).name == name


@pytest.mark.parametrize("name", ["", "1st", "max-depth", "max depth", "a.b", "A" * 129, None, 5])
def test_invalid_parameter_names_are_spec_errors(name: Any) -> None:
    with pytest.raises(SpecError) as raised:
        ParameterString(name)

    assert raised.value.field == "parameters"
    assert f"invalid parameter name {name!r}" in str(raised.value)


def test_parameter_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError):
        ParameterString("MaxDepth\n")


# -- parse_text (the CLI's --param Name=text) ----------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "text", "expected"),
    [
        (ParameterInteger("MaxDepth"), "8", 8),
        (ParameterInteger("MaxDepth"), " 8 ", 8),
        (ParameterInteger("MaxDepth"), "-2", -2),
        (ParameterFloat("Rate"), "0.25", 0.25),
        (ParameterFloat("Rate"), "3", 3.0),
        (ParameterString("Bucket"), "s3://bucket", "s3://bucket"),
        (ParameterString("Bucket"), "8", "8"),
        (ParameterBoolean("Flag"), "true", True),
        (ParameterBoolean("Flag"), "True", True),
        (ParameterBoolean("Flag"), " yes ", True),
        (ParameterBoolean("Flag"), "1", True),
        (ParameterBoolean("Flag"), "false", False),
        (ParameterBoolean("Flag"), "NO", False),
        (ParameterBoolean("Flag"), "0", False),
    ],
)
def test_parse_text_converts_command_line_text(parameter: Parameter, text: str, expected: Any) -> None:
    result = parameter.parse_text(text)

    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "text", "type_word"),
    [
        (ParameterInteger("MaxDepth"), "deep", "integer"),
        (ParameterInteger("MaxDepth"), "8.5", "integer"),
        (ParameterInteger("MaxDepth"), "", "integer"),
        (ParameterFloat("MaxDepth"), "deep", "float"),
        (ParameterBoolean("MaxDepth"), "deep", "boolean"),
        (ParameterBoolean("MaxDepth"), "", "boolean"),
    ],
)
def test_parse_text_refuses_text_naming_parameter_and_type(
    parameter: Parameter, text: str, type_word: str
) -> None:
    with pytest.raises(ParameterValidationError) as raised:
        parameter.parse_text(text)

    assert str(raised.value) == f"parameter 'MaxDepth' expects {type_word}, got {text!r}"


@pytest.mark.parametrize(
    ("parameter", "value", "words"),
    [
        (ParameterFloat("F"), float("nan"), "must be a finite number, got nan"),
        (ParameterFloat("F"), float("inf"), "must be a finite number, got inf"),
        (ParameterFloat("F"), float("-inf"), "must be a finite number, got -inf"),
        (ParameterFloat("F"), 10**400, "must be a finite number, got 10000000000000000000... (401 digits)"),
        (ParameterInteger("I"), 2**63, "must fit in 64 bits"),
        (ParameterInteger("I"), -(2**63) - 1, "must fit in 64 bits"),
    ],
)
def test_coerce_refuses_numbers_airflow_cannot_store(parameter: Parameter, value: Any, words: str) -> None:
    """NaN, infinities and integers beyond 64 bits: Airflow's params, JSON and DB refuse them at run time."""
    with pytest.raises(ParameterValidationError, match=re.escape(words)):
        parameter.coerce(value)
    with pytest.raises(SpecError, match=re.escape(words)):
        type(parameter)(parameter.name, default_value=value)


@pytest.mark.parametrize(
    ("parameter", "text"),
    [
        (ParameterFloat("F"), "nan"),
        (ParameterFloat("F"), "inf"),
        (ParameterFloat("F"), "1e999"),
        (ParameterInteger("I"), "9223372036854775808"),
    ],
)
def test_parse_text_refuses_numbers_airflow_cannot_store(parameter: Parameter, text: str) -> None:
    with pytest.raises(ParameterValidationError, match="finite number|64 bits"):
        parameter.parse_text(text)


def test_the_64_bit_limits_themselves_are_accepted() -> None:
    assert ParameterInteger("I").coerce(2**63 - 1) == 2**63 - 1
    assert ParameterInteger("I").coerce(-(2**63)) == -(2**63)
    assert ParameterFloat("F").coerce(1e308) == 1e308


def test_parse_text_checks_enum_values() -> None:
    depth = ParameterInteger("MaxDepth", enum_values=[4, 8])

    assert depth.parse_text("8") == 8
    with pytest.raises(ParameterValidationError, match=r"must be one of \[4, 8\], got 6"):
        depth.parse_text("6")


def test_boolean_parse_text_checks_enum_values() -> None:
    only_true = ParameterBoolean("Deploy", enum_values=[True])

    with pytest.raises(ParameterValidationError):
        only_true.parse_text("false")


# -- resolve_parameters ----------------------------------------------------------------------


def _parameters(*parameters: Parameter) -> dict[str, Parameter]:
    return {parameter.name: parameter for parameter in parameters}


def test_resolve_uses_defaults_for_values_not_given() -> None:
    parameters = _parameters(
        ParameterInteger("MaxDepth", default_value=5),
        ParameterBoolean("Deploy", default_value=False),
    )

    assert resolve_parameters(parameters, {}) == {"MaxDepth": 5, "Deploy": False}


def test_resolve_validates_and_normalises_given_values() -> None:
    parameters = _parameters(
        ParameterInteger("MaxDepth", default_value=5), ParameterFloat("Rate", default_value=0.1)
    )

    values = resolve_parameters(parameters, {"MaxDepth": 8, "Rate": 1})

    assert values == {"MaxDepth": 8, "Rate": 1.0}
    assert type(values["Rate"]) is float


def test_resolve_treats_a_given_none_as_not_given() -> None:
    parameters = _parameters(ParameterInteger("MaxDepth", default_value=5))

    assert resolve_parameters(parameters, {"MaxDepth": None}) == {"MaxDepth": 5}


def test_resolve_lists_unknown_names_sorted_and_the_known_ones() -> None:
    parameters = _parameters(
        ParameterInteger("MaxDepth", default_value=5), ParameterFloat("Rate", default_value=0.1)
    )

    with pytest.raises(ParameterValidationError) as raised:
        resolve_parameters(parameters, {"Zeta": 1, "Alpha": 2, "MaxDepth": 3})

    assert str(raised.value) == "unknown parameter(s) Alpha, Zeta; the pipeline has: MaxDepth, Rate"


def test_resolve_unknown_name_in_a_pipeline_without_parameters() -> None:
    with pytest.raises(ParameterValidationError, match=r"unknown parameter\(s\) X; the pipeline has: none"):
        resolve_parameters({}, {"X": 1})


def test_resolve_refuses_a_missing_required_parameter() -> None:
    parameters = _parameters(ParameterString("Bucket"))

    with pytest.raises(ParameterValidationError) as raised:
        resolve_parameters(parameters, {})

    assert str(raised.value) == "parameter 'Bucket' is required and has no default"


def test_resolve_reports_every_error_in_one_message() -> None:
    parameters = _parameters(
        ParameterString("Bucket"),
        ParameterInteger("MaxDepth", default_value=5),
        ParameterBoolean("Deploy", default_value=False),
    )

    with pytest.raises(ParameterValidationError) as raised:
        resolve_parameters(parameters, {"MaxDepth": "8", "Deploy": "yes"})

    assert str(raised.value).split("; ") == [
        "parameter 'Bucket' is required and has no default",
        "parameter 'MaxDepth' expects integer, got str '8'",
        "parameter 'Deploy' expects boolean, got str 'yes'",
    ]


def test_resolve_checks_enum_values_of_given_values() -> None:
    parameters = _parameters(ParameterString("Size", default_value="s", enum_values=["s", "m"]))

    with pytest.raises(
        ParameterValidationError, match=r"parameter 'Size' must be one of \['s', 'm'\], got 'xl'"
    ):
        resolve_parameters(parameters, {"Size": "xl"})


# -- json_schema, expression side, definition ----------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "schema"),
    [
        (ParameterString("S", default_value="x"), {"type": "string"}),
        (ParameterInteger("I", default_value=1), {"type": "integer"}),
        (ParameterFloat("F", default_value=1.0), {"type": "number"}),
        (ParameterBoolean("B", default_value=True), {"type": "boolean"}),
        (ParameterString("S", enum_values=["a", "b"]), {"type": "string", "enum": ["a", "b"]}),
        (ParameterFloat("F", enum_values=[1, 2]), {"type": "number", "enum": [1.0, 2.0]}),
    ],
)
def test_json_schema_has_type_and_enum_but_no_default(parameter: Parameter, schema: dict[str, Any]) -> None:
    assert parameter.json_schema() == schema


def test_json_schema_enum_is_a_copy() -> None:
    size = ParameterString("Size", enum_values=["s", "m"])

    size.json_schema()["enum"].append("xl")

    assert size.enum_values == ["s", "m"]


def test_parameter_types_are_registered_by_type_name() -> None:
    registered = dict(PARAMETER_TYPES)

    assert registered == {
        "String": ParameterString,
        "Integer": ParameterInteger,
        "Float": ParameterFloat,
        "Boolean": ParameterBoolean,
        "List": ParameterList,
    }


def test_parameter_is_an_expression_read_from_the_context() -> None:
    depth = ParameterInteger("MaxDepth", default_value=5)
    context = FakeContext(parameters={"MaxDepth": 8})

    assert depth.evaluate(context) == 8
    assert context.reads == [("parameter", "MaxDepth")]
    assert depth.to_dict() == {"param": "MaxDepth"}
    assert list(depth.references()) == [depth]
    assert list(depth.children()) == []


def test_definition_holds_the_declaration() -> None:
    size = ParameterString("Size", default_value="s", enum_values=["s", "m"], description="instance size")

    assert size.definition() == {
        "name": "Size",
        "type": "String",
        "default_value": "s",
        "enum_values": ["s", "m"],
        "description": "instance size",
    }
