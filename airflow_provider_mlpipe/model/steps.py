"""Steps, named as in SageMaker: ``ProcessingStep``, ``TrainingStep``, ``ConditionStep``, ``FailStep``,
``RegisterModel``, plus ``FunctionStep`` for a plain Python callable.

A step declares its outputs; ``step.output("name")`` is the reference another step passes as input.
Data passes between steps through the artifact store, never through hand-written S3 code.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.cache import CacheConfig, check_cache_config
from airflow_provider_mlpipe.model.conditions import Condition
from airflow_provider_mlpipe.model.expressions import (
    Expression,
    StepOutput,
    iter_references,
    to_canonical,
)
from airflow_provider_mlpipe.model.parameters import shown

# Airflow's task_id alphabet, which also keeps a step name from escaping the artifact store's root.
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
# Input, output and channel names become folder names and environment variable suffixes.
IO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
# Airflow keeps a task's retries in an INTEGER column: 32 bits in Postgres and MySQL.
MAX_ATTEMPTS_LIMIT = 2**31 - 1
# The longest wait Airflow's retry delays (Python timedeltas) can hold.
MAX_WAIT_SECONDS = timedelta.max.total_seconds()


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing step is tried again; mapped to Airflow's own task retries.

    :param max_attempts: attempts in all, the first included (1 = no retry).
    :param interval_seconds: wait before the first retry.
    :param backoff_rate: each further wait is the previous one times this (1.0 = constant).
    :param max_interval_seconds: the longest wait, if any.
    """

    max_attempts: int = 1
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_interval_seconds: float | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.max_attempts, int)
            or isinstance(self.max_attempts, bool)
            or self.max_attempts < 1
        ):
            raise SpecError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}", field="retry")
        if self.max_attempts > MAX_ATTEMPTS_LIMIT:
            raise SpecError(
                f"max_attempts must be at most {MAX_ATTEMPTS_LIMIT} (Airflow stores retries as a 32-bit "
                f"integer), got {shown(self.max_attempts)}",
                field="retry.max_attempts",
            )
        for name in ("interval_seconds", "backoff_rate", "max_interval_seconds"):
            value = getattr(self, name)
            if value is None and name == "max_interval_seconds":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SpecError(f"{name} must be a number of seconds, got {value!r}", field=f"retry.{name}")
            if not math.isfinite(value) or abs(value) > MAX_WAIT_SECONDS:
                raise SpecError(
                    f"{name} must be a finite number no larger than {MAX_WAIT_SECONDS:.0f}, got {shown(value)}",
                    field=f"retry.{name}",
                )
        if self.interval_seconds < 0:
            raise SpecError("interval_seconds must be >= 0", field="retry.interval_seconds")
        if self.backoff_rate < 1:
            raise SpecError("backoff_rate must be >= 1", field="retry.backoff_rate")
        if self.max_interval_seconds is not None and self.max_interval_seconds < self.interval_seconds:
            raise SpecError(
                "max_interval_seconds must be >= interval_seconds", field="retry.max_interval_seconds"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "interval_seconds": self.interval_seconds,
            "backoff_rate": self.backoff_rate,
            "max_interval_seconds": self.max_interval_seconds,
        }


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file inside a step output, readable by ``JsonGet`` (SageMaker's ``PropertyFile``).

    :param name: how ``JsonGet`` names it.
    :param output_name: the output (directory) that holds the file.
    :param path: the file's path inside that output.
    """

    name: str
    output_name: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "output_name": self.output_name, "path": self.path}


@dataclass(frozen=True)
class ProcessingInput:
    """A named input of a processing step, available to the script as a directory.

    :param input_name: the name; the script finds the directory in ``MLPIPE_INPUT_<NAME>``.
    :param source: a step output, or a path/URL (``data/x.csv``, ``file:///...``, ``s3://...``),
        possibly from a parameter. Relative paths are relative to the pipeline's folder.
    """

    input_name: str
    source: Any


@dataclass(frozen=True)
class ProcessingOutput:
    """A named output directory of a processing step, collected as an artifact after the script ends.

    :param output_name: the name; the script writes into ``MLPIPE_OUTPUT_<NAME>``.
    """

    output_name: str


def _callable_name(function: Callable[..., Any] | str) -> str:
    """How a step's function is named in its definition (and so in its digest).

    A callable is named by its qualified name only: its module's name depends on how the file was
    imported (Airflow's DAG processor, a worker, ``mlpipe run`` and a copy of the dags folder each
    name it differently), and the digest must depend on content alone. The content is in the digest
    through the function's source (``function_source``).
    """
    if isinstance(function, str):
        return function
    return str(getattr(function, "__qualname__", None) or getattr(function, "__name__", repr(function)))


def check_function(function: Any, *, step: str) -> None:
    """A step's function is a callable or ``"module:attribute"`` / ``"file.py:attribute"``."""
    if callable(function):
        return
    if isinstance(function, str):
        module, _, attribute = function.partition(":")
        if module.strip() and attribute.strip():
            return
    raise SpecError(
        f"function must be a callable or 'module:attribute' (or 'file.py:attribute'), got {function!r}",
        step=step,
        field="function",
    )


def _function_file(function: Any) -> str | None:
    """The file of a ``"file.py:attribute"`` function, whose content belongs in the step's digest."""
    if isinstance(function, str):
        module = function.partition(":")[0]
        if module.endswith(".py"):
            return module
    return None


def _callable_source_digest(function: Callable[..., Any] | str) -> str | None:
    if isinstance(function, str):
        return None
    try:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()
    except (OSError, TypeError):
        return None


# A variable name, or a prefix and "*" (``AWS_*``): what ``pass_env`` accepts.
PASS_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?")


def check_pass_env(names: Sequence[str] | None, *, step: str) -> list[str]:
    """``pass_env`` as a list of variable names (or ``PREFIX*``), refusing anything else."""
    if names is None:
        return []
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise SpecError(
            f"pass_env must be a list of variable names, got {names!r}", step=step, field="pass_env"
        )
    for name in names:
        if not PASS_ENV_NAME.fullmatch(name):
            raise SpecError(
                f"pass_env: {name!r} is not a variable name (letters, digits, _; or a prefix ending in *)",
                step=step,
                field="pass_env",
            )
    return list(names)


def pass_env_definition(names: list[str]) -> dict[str, Any]:
    """``pass_env`` in a step's definition, only when set: steps written before it existed keep their
    digest (and so stay reusable by selective runs)."""
    return {"pass_env": sorted(names)} if names else {}


# A day is far beyond any step of an example; a week is the bound, so a typo (seconds given as ms) shows.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600


def check_timeout(timeout: Any, *, step: str) -> float | None:
    """A step's ``timeout``: None, or a positive finite number of seconds up to a week."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
        raise SpecError(f"timeout must be a number of seconds, got {timeout!r}", step=step, field="timeout")
    if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        raise SpecError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT_SECONDS} seconds (a week), got {shown(timeout)}",
            step=step,
            field="timeout",
        )
    return timeout


# Step kinds that run code: only they may declare ``code_files``.
CODE_KINDS = frozenset({"function", "processing", "training"})


def check_code_files(patterns: Sequence[str] | None, *, step: str, kind: str) -> list[str]:
    """``code_files`` as a list of paths or glob patterns, on a step kind that runs code."""
    if patterns is None:
        return []
    if isinstance(patterns, str) or not all(isinstance(item, str) and item.strip() for item in patterns):
        raise SpecError(
            f"code_files must be a list of file, folder or glob paths, got {patterns!r}",
            step=step,
            field="code_files",
        )
    if patterns and kind not in CODE_KINDS:
        raise SpecError(
            f"a {kind} step runs no code: code_files does not apply", step=step, field="code_files"
        )
    return list(patterns)


def _step_name(item: Any) -> str:
    """A step given as a step object or by name."""
    return item.name if isinstance(item, Step) else item


class Step:
    """The base of every step.

    :param name: unique in the pipeline; becomes the Airflow task id.
    :param depends_on: steps (or names) that must finish first although no output is passed.
    :param retry_policy: retries on failure (``RetryPolicy``).
    :param display_name: a label for the UI (the task's display name).
    :param description: free text, shown as the task's documentation.
    :param timeout: seconds a try may run before Airflow fails it (its ``execution_timeout``).
    :param for_each: run the step once per item of this list (a list parameter, a list output or a
        literal list): a fan-out (see :mod:`airflow_provider_mlpipe.model.fanout`).
    :param max_concurrency: with ``for_each``, how many items run at once.
    :param code_files: more files whose content is part of the step's code (files, folders or glob
        patterns, relative to the pipeline's folder): what the step reads that an ``import`` does not
        show (a module loaded by name, a config file, a SQL template).
    :param cache_config: step caching (:class:`CacheConfig`); default: the pipeline's, else off.
    """

    kind: ClassVar[str] = ""
    # The operator that runs it, when not the one of its kind (a loop's exit test is a condition step).
    operator_kind: ClassVar[str | None] = None

    def __init__(
        self,
        name: str,
        *,
        depends_on: Sequence[Step | str] | None = None,
        retry_policy: RetryPolicy | None = None,
        display_name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        for_each: Any = None,
        max_concurrency: int | None = None,
        code_files: Sequence[str] | None = None,
        cache_config: CacheConfig | None = None,
    ) -> None:
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            raise SpecError(
                f"invalid step name {name!r}: use letters, digits, '_', '-', '.' (not first), at most 200",
                step=str(name),
                field="name",
            )
        self.name = name
        self.depends_on: list[str] = [_step_name(item) for item in (depends_on or [])]
        self._depends_on_steps = [item for item in (depends_on or []) if isinstance(item, Step)]
        self.retry_policy = retry_policy
        self.display_name = display_name
        self.description = description
        self.timeout = check_timeout(timeout, step=name)
        self.for_each = for_each
        self.max_concurrency = max_concurrency
        if for_each is not None or max_concurrency is not None:
            from airflow_provider_mlpipe.model.fanout import check_fan_out

            check_fan_out(self)
        self.declared_code_files = check_code_files(code_files, step=name, kind=self.kind)
        self.cache_config = check_cache_config(cache_config, step=name, kind=self.kind)
        self.base_dir: Path | None = None
        # In iteration i > 1 of a loop: the exit test of iteration i - 1, which must have said "go on".
        self.loop_gate: str | None = None

    # -- what the graph needs -------------------------------------------------------------
    def output_names(self) -> list[str]:
        """The outputs this step produces, by name."""
        return []

    def output(self, output_name: str) -> StepOutput:
        """A reference to one of this step's outputs, to pass to another step."""
        return StepOutput(self.name, output_name)

    def inputs(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(field, value)`` for every value (literal or expression) the step reads at run time."""
        return iter(())

    def all_inputs(self) -> Iterator[tuple[str, Any]]:
        """:meth:`inputs`, and the list a fan-out step runs over."""
        if self.for_each is not None:
            yield "for_each", self.for_each
        yield from self.inputs()

    def references(self) -> Iterator[tuple[str, Expression]]:
        """Yield ``(field, reference)`` for every parameter, step output or JsonGet the step reads."""
        for field_name, value in self.all_inputs():
            references = value.references() if isinstance(value, Condition) else iter_references(value)
            for reference in references:
                yield field_name, reference

    def related_steps(self) -> Iterator[Step]:
        """Step objects this step names directly (for collecting a Python pipeline's steps)."""
        yield from self._depends_on_steps
        for _, reference in self.references():
            producer = getattr(reference, "producer", None)  # a @step function's result
            if isinstance(producer, Step):
                yield producer

    def property_files(self) -> list[PropertyFile]:
        return []

    # -- fan-out (see model.fanout) ----------------------------------------------------------
    @property
    def is_fan_out(self) -> bool:
        """Whether the step runs once per item (``for_each``, or a tuning step's trials)."""
        return self.for_each is not None

    @property
    def concurrency(self) -> int | None:
        """How many items of a fan-out run at once (None: as many as Airflow allows)."""
        return self.max_concurrency

    def fan_out_items(self, evaluate: Callable[[Any], Any]) -> list[Any]:
        """The items of this run, ``for_each`` evaluated with ``evaluate``."""
        from airflow_provider_mlpipe.model.fanout import checked_items

        return checked_items(self.name, self.for_each, evaluate(self.for_each))

    def trial_output_names(self) -> list[str]:
        """What one item's run produces; the fan-out step collects each as a list."""
        return self.output_names()

    def code_files(self) -> list[Path]:
        """Files the step runs; they must exist, and their content is part of the step's digest."""
        return []

    def input_names(self) -> list[str]:
        """The names of the step's input folders (processing inputs, training channels)."""
        return []

    # -- digests --------------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        """The canonical definition, compared between runs (selective execution, caching)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "depends_on": sorted(self.depends_on),
            "retry_policy": self.retry_policy.to_dict() if self.retry_policy else None,
            **self._definition_fields(),
            # Only when set: steps written before these options existed keep their digest.
            **({"timeout": self.timeout} if self.timeout is not None else {}),
            **({"for_each": to_canonical(self.for_each)} if self.for_each is not None else {}),
            **({"max_concurrency": self.max_concurrency} if self.max_concurrency is not None else {}),
            # Only when set, so that steps written before code_files existed keep their digest.
            **({"code_files": sorted(self.declared_code_files)} if self.declared_code_files else {}),
        }

    def _definition_fields(self) -> dict[str, Any]:
        return {}

    def digest(self) -> str:
        """sha256 of the definition and of the content of every code file: the script or function
        file, the project-local modules it imports and the declared ``code_files`` (see
        :func:`airflow_provider_mlpipe.fingerprint.step_digest`)."""
        from airflow_provider_mlpipe.fingerprint import step_digest

        return step_digest(self)

    def resolve_path(self, path: str) -> Path:
        """A path relative to the pipeline's folder, as an absolute path."""
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and self.base_dir is not None:
            candidate = self.base_dir / candidate
        return candidate

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


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
        script = _function_file(self.function)
        return [self.resolve_path(script)] if script else []

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "function": _callable_name(self.function),
            "function_source": _callable_source_digest(self.function),
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
        script = self.code or _function_file(self.function)
        return [self.resolve_path(script)] if script else []

    def input_names(self) -> list[str]:
        return list(self.channels)

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "function": _callable_name(self.function) if self.function else None,
            "function_source": _callable_source_digest(self.function) if self.function else None,
            "hyperparameters": to_canonical(self.hyperparameters),
            "inputs": to_canonical(self.channels),
            "command": self.command,
            "env": to_canonical(self.env),
            **pass_env_definition(self.pass_env),
        }


class ConditionStep(Step):
    """Evaluates conditions (all must hold) and runs ``if_steps`` or ``else_steps``.

    Output: ``outcome`` (bool). Steps after both branches may rejoin: a step runs when none of its
    upstream steps failed and at least one ran. Condition steps may sit inside branches (nesting).

    :param conditions: a list of conditions, all of which must hold.
    :param if_steps: steps (or names) run when they hold.
    :param else_steps: steps (or names) run otherwise.
    """

    kind = "condition"

    def __init__(
        self,
        name: str,
        conditions: Sequence[Condition],
        if_steps: Sequence[Step | str] | None = None,
        else_steps: Sequence[Step | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if not conditions:
            raise SpecError("a condition step needs at least one condition", step=name, field="conditions")
        for condition in conditions:
            if not isinstance(condition, Condition):
                raise SpecError(f"expected a condition, got {condition!r}", step=name, field="conditions")
        self.conditions = list(conditions)
        self._if_steps = list(if_steps or [])
        self._else_steps = list(else_steps or [])
        self.if_steps: list[str] = [_step_name(item) for item in self._if_steps]
        self.else_steps: list[str] = [_step_name(item) for item in self._else_steps]

    def output_names(self) -> list[str]:
        return ["outcome"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        return ((f"conditions[{index}]", value) for index, value in enumerate(self.conditions))

    def related_steps(self) -> Iterator[Step]:
        yield from super().related_steps()
        yield from (item for item in self._if_steps + self._else_steps if isinstance(item, Step))

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "conditions": [condition.to_dict() for condition in self.conditions],
            "if_steps": self.if_steps,
            "else_steps": self.else_steps,
        }


class FailStep(Step):
    """Stops the run as failed with a message; the message may hold expressions (``Join``, JsonGet).

    :param error_message: text or an expression.
    """

    kind = "fail"

    def __init__(self, name: str, error_message: Any = "", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.error_message = error_message

    def inputs(self) -> Iterator[tuple[str, Any]]:
        return iter((("error_message", self.error_message),))

    def _definition_fields(self) -> dict[str, Any]:
        return {"error_message": to_canonical(self.error_message)}


class RegisterModel(Step):
    """Records a model version in the model registry (by default kept in the artifact store).

    Output: ``model_package`` (group, version, approval status).

    :param model_data: the model artifact, e.g. ``train.output("model")``.
    :param model_package_group_name: the registry group.
    :param approval_status: ``PendingManualApproval`` (default), ``Approved`` or ``Rejected``.
    :param model_metrics: metrics to keep with the version, e.g. a ``JsonGet`` of the evaluation.
    :param description: free text kept with the version.
    :param metadata: extra key/values kept with the version.
    """

    kind = "register_model"

    def __init__(
        self,
        name: str,
        model_data: Any,
        model_package_group_name: Any,
        approval_status: Any = "PendingManualApproval",
        model_metrics: Any = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, description=description, **kwargs)
        if isinstance(approval_status, str) and approval_status not in APPROVAL_STATUSES:
            raise SpecError(
                f"approval_status must be one of {', '.join(APPROVAL_STATUSES)}, got {approval_status!r}",
                step=name,
                field="approval_status",
            )
        self.model_data = model_data
        self.model_package_group_name = model_package_group_name
        self.approval_status = approval_status
        self.model_metrics = model_metrics
        self.metadata = dict(metadata or {})

    def output_names(self) -> list[str]:
        return ["model_package"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield "model_data", self.model_data
        yield "model_package_group_name", self.model_package_group_name
        yield "approval_status", self.approval_status
        yield "model_metrics", self.model_metrics
        yield from ((f"metadata.{key}", value) for key, value in self.metadata.items())

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "model_data": to_canonical(self.model_data),
            "model_package_group_name": to_canonical(self.model_package_group_name),
            "approval_status": to_canonical(self.approval_status),
            "model_metrics": to_canonical(self.model_metrics),
            "metadata": to_canonical(self.metadata),
        }


STEP_KINDS: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (FunctionStep, ProcessingStep, TrainingStep, ConditionStep, FailStep, RegisterModel)
}
