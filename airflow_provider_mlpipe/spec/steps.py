"""Reading the steps of a spec: each step's kind and the fields of that kind (its name and common
options are read by :mod:`airflow_provider_mlpipe.spec.step_options`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from airflow_provider_mlpipe.exceptions import PipelineGraphError, SpecError
from airflow_provider_mlpipe.model.steps import (
    IO_NAME,
    STEP_KINDS,
    ProcessingInput,
    ProcessingOutput,
    PropertyFile,
    Step,
)
from airflow_provider_mlpipe.spec.fields import describe, suggestion
from airflow_provider_mlpipe.spec.step_options import _CACHE_KEYS, _RETRY_KEYS, StepOptionsReader
from airflow_provider_mlpipe.spec.yaml_source import line_of_item, line_of_key

# The name and the common options are read by StepOptionsReader (spec.step_options); the key lists of
# retry and cache moved with them and stay importable from here.
__all__ = ["_CACHE_KEYS", "_RETRY_KEYS", "StepReader"]

_COMMON_STEP_KEYS = (
    "name",
    "type",
    "depends_on",
    "retry",
    "display_name",
    "description",
    "timeout",
    "for_each",
    "max_concurrency",
    "code_files",
    "cache",
)
_TRAINING_KEYS = ("code", "function", "hyperparameters", "inputs", "command", "env", "pass_env")
_TUNING_KEYS = (
    "hyperparameter_ranges",
    "objective_metric_name",
    "objective_type",
    "strategy",
    "max_jobs",
    "max_parallel_jobs",
    "random_seed",
)
_RANGE_KEYS = {
    "Integer": ("type", "min_value", "max_value", "scaling_type"),
    "Continuous": ("type", "min_value", "max_value", "scaling_type"),
    "Categorical": ("type", "values"),
}
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "function": ("function", "arguments", "outputs", "allow_pickle"),
    "processing": ("code", "inputs", "outputs", "arguments", "env", "pass_env", "command", "property_files"),
    "training": _TRAINING_KEYS,
    "tuning": _TRAINING_KEYS + _TUNING_KEYS,
    "loop": ("steps", "until", "max_iterations", "outputs"),
    "transform": (
        "data",
        "model_data",
        "model_package_group_name",
        "model_version",
        "code",
        "function",
        "arguments",
        "env",
        "pass_env",
        "command",
    ),
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
_PROPERTY_FILE_KEYS = ("name", "output", "path")


class StepReader(StepOptionsReader):
    """Reads the ``steps`` list: each step's name, kind, common options and kind-specific fields."""

    def read_steps(self, raw: Any, line: int | None) -> list[Step]:
        items = self.sequence(raw, "steps", line) if raw is not None else []
        first_lines: dict[str, int | None] = {}
        steps = []
        for index, item in enumerate(items):
            steps.append(self.read_step(item, index, line_of_item(items, index, line), first_lines))
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
                line_of_key(spec, "name"),
                PipelineGraphError,
            )
        first_lines[name] = line
        self.note(None, line)
        self.note_keys(spec)
        kind = self.text(self.require(spec, "type", what="a step"), "type", line_of_key(spec, "type"))
        if kind not in STEP_KINDS:
            raise self.error(
                f"unknown step type {kind!r}{suggestion(kind, list(STEP_KINDS))} (known: {', '.join(STEP_KINDS)})",
                "type",
                line_of_key(spec, "type"),
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

    def function_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        self.note("code", line_of_key(spec, "function"))  # the model checks a "file.py:f" file as "code"
        options: dict[str, Any] = {
            "function": self.text(
                self.require(spec, "function", what="a function step"),
                "function",
                line_of_key(spec, "function"),
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
        self.note("job_arguments", line_of_key(spec, "arguments"))
        for index in range(len(job_arguments)):
            self.note(f"job_arguments[{index}]", line_of_item(spec["arguments"], index))
        return {
            "code": self.text(
                self.require(spec, "code", what="a processing step"), "code", line_of_key(spec, "code")
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
        items = self.sequence(raw, "property_files", line_of_key(spec, "property_files"))
        result: list[PropertyFile] = []
        for index, item in enumerate(items):
            field, line = f"property_files[{index}]", line_of_item(items, index)
            entry = self.mapping(item, field, line)
            self.check_keys(entry, _PROPERTY_FILE_KEYS, what="a property file", prefix=f"{field}.")
            name, output, path = (
                self.text(
                    self.require(entry, key, what="a property file", prefix=f"{field}."),
                    f"{field}.{key}",
                    line_of_key(entry, key),
                )
                for key in _PROPERTY_FILE_KEYS
            )
            if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
                # The file is read from inside the output directory; it must not point outside it.
                raise self.error(
                    f"the path must stay inside output {output!r}, got {path!r}",
                    f"{field}.path",
                    line_of_key(entry, "path"),
                )
            if name in (known.name for known in result):
                raise self.error(f"duplicate property file {name!r}", f"{field}.name", line)
            result.append(PropertyFile(name, output, path))
        return result

    def training_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        if "code" not in spec:
            self.note("code", line_of_key(spec, "function"))  # as for function steps
        return {
            "code": self.optional_text(spec, "code"),
            "function": self.optional_text(spec, "function"),
            "hyperparameters": self.value_map(spec, "hyperparameters"),
            "inputs": self.value_map(spec, "inputs", names=IO_NAME),
            "command": self.optional_strings(spec, "command"),
            "env": self.value_map(spec, "env"),
            "pass_env": self.optional_strings(spec, "pass_env"),
        }

    def tuning_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        from airflow_provider_mlpipe.model.tuning_ranges import RANGE_KINDS

        raw = self.mapping(
            self.require(spec, "hyperparameter_ranges", what="a tuning step"),
            "hyperparameter_ranges",
            line_of_key(spec, "hyperparameter_ranges"),
        )
        ranges = {}
        for name, item in raw.items():
            field, line = f"hyperparameter_ranges.{name}", line_of_key(raw, name)
            entry = self.mapping(item, field, line)
            kind = self.text(
                self.require(entry, "type", what="a range", prefix=f"{field}."), f"{field}.type", line
            )
            if kind not in RANGE_KINDS:
                raise self.error(
                    f"unknown range type {kind!r}{suggestion(kind, list(RANGE_KINDS))} (known: {', '.join(RANGE_KINDS)})",
                    f"{field}.type",
                    line_of_key(entry, "type"),
                )
            self.check_keys(entry, _RANGE_KEYS[kind], what=f"a {kind} range", prefix=f"{field}.")
            self.note(field, line)
            options = {key: self.optional_value(entry, key) for key in entry if key != "type"}
            for key in ("min_value", "max_value", "values"):
                if key in _RANGE_KEYS[kind] and key not in entry:
                    raise self.error(f"a {kind} range needs '{key}'", f"{field}.{key}", line)
            ranges[name] = RANGE_KINDS[kind](**options)
        options = {
            **self.training_step(spec),
            "hyperparameter_ranges": ranges,
            "objective_metric_name": self.text(
                self.require(spec, "objective_metric_name", what="a tuning step"),
                "objective_metric_name",
                line_of_key(spec, "objective_metric_name"),
            ),
        }
        for key in ("objective_type", "strategy"):
            if spec.get(key) is not None:
                options[key] = self.text(spec[key], key, line_of_key(spec, key))
        for key in ("max_jobs", "max_parallel_jobs", "random_seed"):
            if spec.get(key) is not None:
                options[key] = spec[key]
        return options

    def loop_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        loop = self.step
        body_line = line_of_key(spec, "steps")
        raw = self.require(spec, "steps", what="a loop")
        items = self.sequence(raw, "steps", body_line)
        first_lines: dict[str, int | None] = {}
        body = []
        for index, item in enumerate(items):
            body.append(self.read_step(item, index, line_of_item(items, index, body_line), first_lines))
            self.step = loop
        until_raw = spec.get("until")
        until_items = (
            self.sequence(until_raw, "until", line_of_key(spec, "until")) if until_raw is not None else []
        )
        outputs = self.value_map(spec, "outputs", names=IO_NAME)
        max_iterations = spec.get("max_iterations")
        return {
            "steps": body,
            "until": [
                self.condition(item, f"until[{index}]", line_of_item(until_items, index))
                for index, item in enumerate(until_items)
            ],
            "max_iterations": max_iterations,
            "outputs": outputs,
        }

    def transform_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        if "code" not in spec:
            self.note("code", line_of_key(spec, "function"))
        options: dict[str, Any] = {
            "data": self.optional_value(spec, "data")
            if self.require(spec, "data", what="a transform step")
            else None,
            "model_data": self.optional_value(spec, "model_data"),
            "model_package_group_name": self.optional_value(spec, "model_package_group_name"),
            "code": self.optional_text(spec, "code"),
            "function": self.optional_text(spec, "function"),
            "arguments": self.value_list(spec, "arguments"),
            "env": self.value_map(spec, "env"),
            "pass_env": self.optional_strings(spec, "pass_env"),
            "command": self.optional_strings(spec, "command"),
        }
        if "model_version" in spec:
            options["model_version"] = self.optional_value(spec, "model_version")
        return options

    def condition_step(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        raw = spec.get("conditions")
        items = self.sequence(raw, "conditions", line_of_key(spec, "conditions")) if raw is not None else []
        return {
            "conditions": [
                self.condition(item, f"conditions[{index}]", line_of_item(items, index))
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
            raise self.error(f"expected true or false, got {describe(value)}", key, line_of_key(spec, key))
        return value


_STEP_READERS: dict[str, Callable[[StepReader, Mapping[Any, Any]], dict[str, Any]]] = {
    "function": StepReader.function_step,
    "processing": StepReader.processing_step,
    "training": StepReader.training_step,
    "condition": StepReader.condition_step,
    "fail": StepReader.fail_step,
    "register_model": StepReader.register_model_step,
    "tuning": StepReader.tuning_step,
    "loop": StepReader.loop_step,
    "transform": StepReader.transform_step,
}
