"""Batch inference, named as in SageMaker: ``TransformStep`` runs a trained or registered model over a
data set and writes the predictions as an artifact."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.expressions import to_canonical
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import (
    check_function,
    check_pass_env,
    function_definition,
    pass_env_definition,
)


class TransformStep(Step):
    """Runs a model over a data set in batch; output ``predictions`` (a folder).

    The model is either ``model_data`` (a training step's ``model``, or a ``RegisterModel`` step's
    ``model_package``), or a version of the model registry: ``model_package_group_name`` with
    ``model_version`` (a number, or ``latest``, or ``latest-approved``, the default).

    Script contract (``code``): the model folder in ``MLPIPE_MODEL_DIR``, the data folder in
    ``MLPIPE_INPUT_DATA``, an empty folder to write predictions into in ``MLPIPE_OUTPUT_PREDICTIONS``.
    Callable contract (``function``): ``f(model_dir: Path, data_dir: Path, output_dir: Path)``.

    :param data: the data set: a step output, or a path/URL (parameters allowed).
    :param code: the inference script, relative to the pipeline's folder (or give ``function``).
    :param function: a callable or ``"module:function"``.
    :param arguments: extra command-line arguments for the script (expressions rendered as text).
    :param env: extra environment variables for the script.
    :param pass_env: worker variables the script sees as they are (see :class:`ProcessingStep`).
    :param command: the interpreter for ``code``, default the worker's Python.
    """

    kind = "transform"
    LATEST = ("latest", "latest-approved")

    def __init__(
        self,
        name: str,
        data: Any,
        model_data: Any = None,
        model_package_group_name: Any = None,
        model_version: Any = "latest-approved",
        code: str | None = None,
        function: Callable[..., Any] | str | None = None,
        arguments: Sequence[Any] | None = None,
        env: Mapping[str, Any] | None = None,
        pass_env: Sequence[str] | None = None,
        command: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if (model_data is None) == (model_package_group_name is None):
            raise SpecError(
                "give exactly one of 'model_data' (a step's model or model package) and "
                "'model_package_group_name' (a model of the registry)",
                step=name,
                field="model_data",
            )
        if (code is None) == (function is None):
            raise SpecError("give exactly one of 'code' and 'function'", step=name, field="code")
        if function is not None:
            check_function(function, step=name)
        if isinstance(model_version, (bool, float)) or (
            not isinstance(model_version, int)
            and isinstance(model_version, str)
            and model_version not in self.LATEST
        ):
            raise SpecError(
                f"model_version must be a version number, 'latest' or 'latest-approved', got {model_version!r}",
                step=name,
                field="model_version",
            )
        self.data = data
        self.model_data = model_data
        self.model_package_group_name = model_package_group_name
        self.model_version = model_version
        self.code = code
        self.function = function
        self.arguments = list(arguments or [])
        self.env = dict(env or {})
        self.pass_env = check_pass_env(pass_env, step=name)
        self.command = list(command) if command else None

    def output_names(self) -> list[str]:
        return ["predictions"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield "data", self.data
        yield "model_data", self.model_data
        yield "model_package_group_name", self.model_package_group_name
        yield "model_version", self.model_version
        yield from ((f"arguments[{index}]", value) for index, value in enumerate(self.arguments))
        yield from ((f"env.{key}", value) for key, value in self.env.items())

    def input_names(self) -> list[str]:
        return ["data", "model"]

    def code_files(self) -> list[Path]:
        return self._script_files(self.code, self.function)

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "data": to_canonical(self.data),
            "model_data": to_canonical(self.model_data),
            "model_package_group_name": to_canonical(self.model_package_group_name),
            "model_version": to_canonical(self.model_version),
            "code": self.code,
            **function_definition(self.function),
            "arguments": to_canonical(self.arguments),
            "env": to_canonical(self.env),
            "command": self.command,
            **pass_env_definition(self.pass_env),
        }
