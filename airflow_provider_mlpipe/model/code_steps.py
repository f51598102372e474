"""The steps that run code: ``FunctionStep`` (a Python callable), ``ProcessingStep`` (a script with input
and output folders) and ``TrainingStep`` (a script or a callable that writes a model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.expressions import to_canonical
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import (
    ProcessingInput,
    ProcessingOutput,
    PropertyFile,
    check_function,
    check_pass_env,
    function_definition,
    pass_env_definition,
)


class FunctionStep(Step):
    """Runs a Python callable on the worker; its return value becomes the step's outputs.

    :param function: the callable, or ``"package.module:function"``.
    :param arguments: keyword arguments: literals, parameters, other steps' outputs, expressions.
    :param outputs: output names. One name: the whole return value. Several: the callable returns a
        tuple of that length or a dict with those keys.
    :param allow_pickle: whether inputs stored as pickles may be unpickled for this step.
    """

    kind = "function"

    def __init__(
        self,
        name: str,
        function: Callable[..., Any] | str,
        arguments: Mapping[str, Any] | None = None,
        outputs: Sequence[str] = ("result",),
        allow_pickle: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        check_function(function, step=name)
        self.function = function
        self.arguments = dict(arguments or {})
        self.outputs = list(outputs)
        self.allow_pickle = allow_pickle

    def output_names(self) -> list[str]:
        return list(self.outputs)

    def inputs(self) -> Iterator[tuple[str, Any]]:
        return ((f"arguments.{key}", value) for key, value in self.arguments.items())

    def code_files(self) -> list[Path]:
        return self._script_files(None, self.function)

    def _definition_fields(self) -> dict[str, Any]:
        return {
            **function_definition(self.function),
            "arguments": to_canonical(self.arguments),
            "outputs": self.outputs,
            "allow_pickle": self.allow_pickle,
        }


class ProcessingStep(Step):
    """Runs a script as a subprocess with named input and output directories (SageMaker's contract).

    :param code: the script, relative to the pipeline's folder.
    :param inputs: ``ProcessingInput`` items; each is a directory ``MLPIPE_INPUT_<NAME>``.
    :param outputs: ``ProcessingOutput`` items; each is an empty directory ``MLPIPE_OUTPUT_<NAME>``
        collected as a directory artifact when the script exits 0.
    :param job_arguments: command-line arguments; expressions are rendered as text.
    :param env: extra environment variables; expressions are rendered as text.
    :param pass_env: variables of the worker's environment the script sees as they are (``NAME``, or
        ``PREFIX*``); without them a script sees only a safe base environment (see
        :mod:`airflow_provider_mlpipe.operators.script_env`).
    :param command: the interpreter, default the worker's Python.
    :param property_files: JSON files inside outputs that ``JsonGet`` may read.
    """

    kind = "processing"

    def __init__(
        self,
        name: str,
        code: str,
        inputs: Sequence[ProcessingInput] | None = None,
        outputs: Sequence[ProcessingOutput] | None = None,
        job_arguments: Sequence[Any] | None = None,
        env: Mapping[str, Any] | None = None,
        command: Sequence[str] | None = None,
        property_files: Sequence[PropertyFile] | None = None,
        pass_env: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.code = code
        self.processing_inputs = list(inputs or [])
        self.processing_outputs = list(outputs or [])
        self.job_arguments = list(job_arguments or [])
        self.env = dict(env or {})
        self.pass_env = check_pass_env(pass_env, step=name)
        self.command = list(command) if command else None
        self._property_files = list(property_files or [])

    def output_names(self) -> list[str]:
        return [output.output_name for output in self.processing_outputs]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield from ((f"inputs.{item.input_name}", item.source) for item in self.processing_inputs)
        yield from ((f"job_arguments[{index}]", value) for index, value in enumerate(self.job_arguments))
        yield from ((f"env.{key}", value) for key, value in self.env.items())

    def property_files(self) -> list[PropertyFile]:
        return list(self._property_files)

    def code_files(self) -> list[Path]:
        return [self.resolve_path(self.code)]

    def input_names(self) -> list[str]:
        return [item.input_name for item in self.processing_inputs]

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "inputs": {item.input_name: to_canonical(item.source) for item in self.processing_inputs},
            "outputs": self.output_names(),
            "job_arguments": to_canonical(self.job_arguments),
            "env": to_canonical(self.env),
            "command": self.command,
            "property_files": [item.to_dict() for item in self._property_files],
            **pass_env_definition(self.pass_env),
        }


class TrainingStep(Step):
    """Trains a model: a script (SageMaker script mode) or a callable, with hyperparameters and channels.

    Outputs: ``model`` (the model directory) and ``metrics`` (a JSON dict, empty if none written).

    Script contract: channels in ``SM_CHANNEL_<NAME>``, write the model into ``SM_MODEL_DIR`` and
    metrics as ``metrics.json`` into ``SM_OUTPUT_DATA_DIR``; hyperparameters come as ``--name value``
    arguments and as JSON in ``SM_HPS``. Callable contract:
    ``function(hyperparameters: dict, channels: dict[str, Path], model_dir: Path) -> dict | None``
    (the returned dict is the metrics).

    :param code: the training script, relative to the pipeline's folder (or give ``function``).
    :param function: a callable or ``"module:function"`` (or give ``code``).
    :param hyperparameters: name to value; expressions allowed.
    :param inputs: channel name to a step output or a path/URL.
    :param command: the interpreter for ``code``, default the worker's Python.
    :param env: extra environment variables for the script.
    :param pass_env: variables of the worker's environment the script sees as they are (see
        :class:`ProcessingStep`).
    """

    kind = "training"

    def __init__(
        self,
        name: str,
        code: str | None = None,
        function: Callable[..., Any] | str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        command: Sequence[str] | None = None,
        env: Mapping[str, Any] | None = None,
        pass_env: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if (code is None) == (function is None):
            raise SpecError("give exactly one of 'code' and 'function'", step=name, field="code")
        if code is not None and (not isinstance(code, str) or not code.strip()):
            raise SpecError(f"code must be a script path, got {code!r}", step=name, field="code")
        if function is not None:
            check_function(function, step=name)
        self.code = code
        self.function = function
        self.hyperparameters = dict(hyperparameters or {})
        self.channels = dict(inputs or {})
        self.command = list(command) if command else None
        self.env = dict(env or {})
        self.pass_env = check_pass_env(pass_env, step=name)

    def output_names(self) -> list[str]:
        return ["model", "metrics"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield from ((f"hyperparameters.{key}", value) for key, value in self.hyperparameters.items())
        yield from ((f"inputs.{key}", value) for key, value in self.channels.items())
        yield from ((f"env.{key}", value) for key, value in self.env.items())

    def code_files(self) -> list[Path]:
        return self._script_files(self.code, self.function)

    def input_names(self) -> list[str]:
        return list(self.channels)

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            **function_definition(self.function),
            "hyperparameters": to_canonical(self.hyperparameters),
            "inputs": to_canonical(self.channels),
            "command": self.command,
            "env": to_canonical(self.env),
            **pass_env_definition(self.pass_env),
        }
