"""Reading a whole spec: its parameters and steps become a validated :class:`Pipeline`.

The spec is read with a safe loader that remembers the line of every mapping, key and list item, so
that every error -- found here, or raised later by :meth:`Pipeline.validate` through the pipeline's
``locations`` -- names the file, the step, the field and the line.

No Airflow import here: ``mlpipe validate`` and the per-spec work of the DAG processor stay fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.parameters import PARAMETER_TYPES, Parameter
from airflow_provider_mlpipe.model.pipeline import ParallelismConfiguration, Pipeline
from airflow_provider_mlpipe.model.steps import TrainingStep
from airflow_provider_mlpipe.spec.fields import suggestion
from airflow_provider_mlpipe.spec.steps import StepReader
from airflow_provider_mlpipe.spec.yaml_source import line_of_item, line_of_key, read_yaml

if TYPE_CHECKING:
    from airflow_provider_mlpipe.spec.parse_cache import ParseCache

_TOP_KEYS = (
    "name",
    "description",
    "tags",
    "parameters",
    "steps",
    "artifact_store",
    "aws_conn_id",
    "schedule",
    "parallelism",
    "max_concurrent_executions",
    "cache",
)
_PARAMETER_KEYS = ("name", "type", "default", "enum", "description", "secret")


class SpecReader(StepReader):
    """Reads one loaded spec into model objects, recording the line of every step and field.

    :param file: the spec's name in error messages.
    """

    def read_parameters(self, raw: Any, line: int | None) -> list[Parameter]:
        if raw is None:
            return []
        items = self.sequence(raw, "parameters", line)
        first_lines: dict[str, int | None] = {}
        for index, item in enumerate(items):
            item_line = line_of_item(items, index, line)
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
            line_of_key(spec, "name", line),
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
                f"unknown parameter type {type_name!r}{suggestion(type_name, list(PARAMETER_TYPES))} "
                f"(known: {', '.join(PARAMETER_TYPES)})",
                f"{field}.type",
                line_of_key(spec, "type"),
            )
        enum = spec.get("enum")
        if enum is not None:
            enum = self.literal(
                self.sequence(enum, f"{field}.enum", line_of_key(spec, "enum")), f"{field}.enum", line
            )
        description = self.optional_text(spec, "description", prefix=f"{field}.")
        try:
            default = self.literal(spec.get("default"), f"{field}.default", line)
            secret = self.boolean(spec, "secret")
            return PARAMETER_TYPES[type_name](name, default, enum, description, secret=secret)
        except SpecError as error:
            raise self.relocate(error, line_of_key(spec, _parameter_key(error.field))) from None

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
        parameters = self.read_parameters(top.get("parameters"), line_of_key(top, "parameters"))
        steps = self.read_steps(top["steps"], line_of_key(top, "steps"))
        cache_config = self.cache(top)
        return Pipeline(
            name,
            parameters,
            steps,
            description=self.optional_text(top, "description"),
            base_dir=Path(base_dir) if base_dir is not None else None,
            source_file=self.file,
            artifact_store=self.optional_text(top, "artifact_store"),
            aws_conn_id=self.optional_text(top, "aws_conn_id"),
            tags=tags,
            locations=self.locations,
            schedule=self.optional_text(top, "schedule"),
            parallelism_config=self.parallelism(top),
            max_concurrent_executions=top.get("max_concurrent_executions"),
            cache_config=cache_config,
        )

    def parallelism(self, top: Any) -> ParallelismConfiguration | None:
        """``parallelism: {max_parallel_execution_steps: N}`` (SageMaker's ``ParallelismConfiguration``)."""
        if top.get("parallelism") is None:
            return None
        line = line_of_key(top, "parallelism")
        raw = self.mapping(top["parallelism"], "parallelism", line)
        self.check_keys(raw, ("max_parallel_execution_steps",), what="parallelism", prefix="parallelism.")
        try:
            return ParallelismConfiguration(
                self.require(raw, "max_parallel_execution_steps", what="parallelism", prefix="parallelism.")
            )
        except SpecError as error:
            raise self.relocate(error, line) from None


def _parameter_key(field: str | None) -> str:
    """The spec key behind a model error of a parameter: the model names the field, not the line."""
    if (field or "").endswith(".default"):
        return "default"
    return "enum" if "enum" in (field or "") else "name"


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
    return _validated(_read_model(text, file, base_dir), check_files)


def _read_model(text: str, file: str, base_dir: str | os.PathLike[str] | None) -> Pipeline:
    """The pipeline model the spec's text reads to, not yet checked: a function of its arguments only
    (what the parse cache keeps)."""
    document = read_yaml(text, file)
    try:
        return SpecReader(file).read_pipeline(document, base_dir)
    except RecursionError:  # a YAML alias that contains itself, or absurd nesting
        raise SpecError("the spec nests too deeply (does a YAML alias refer to itself?)", file=file) from None


def _validated(pipeline: Pipeline, check_files: bool) -> Pipeline:
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


def load_pipeline_file(
    path: str | os.PathLike[str], *, check_files: bool = True, cache: ParseCache | None = None
) -> Pipeline:
    """Read a pipeline spec file and return the validated :class:`Pipeline`.

    Relative script and data paths in the spec start from the spec's folder.

    :param path: the ``*.pipeline.yaml`` file.
    :param check_files: whether script files must exist.
    :param cache: where the model of an unchanged spec is taken from instead of reading it again (the
        DAG-file loader's, see :mod:`.parse_cache`); the checks run either way.
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
    base_dir = Path(path).absolute().parent
    if cache is None:
        return load_pipeline_text(text, file=file, base_dir=base_dir, check_files=check_files)
    return _validated(
        cache.load(file, base_dir, text, lambda: _read_model(text, file, base_dir)), check_files
    )
