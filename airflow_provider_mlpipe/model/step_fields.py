"""What a step's fields accept: names, retries, property files, processing inputs and outputs, and the
checks of a step's function, ``pass_env``, ``timeout`` and ``code_files``."""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.parameters import shown

# Airflow's task_id alphabet, which also keeps a step name from escaping the artifact store's root.
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
# Input, output and channel names become folder names and environment variable suffixes.
IO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
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


def function_definition(function: Callable[..., Any] | str | None) -> dict[str, str | None]:
    """The ``function`` and ``function_source`` fields of a step's definition (None without a function)."""
    if not function:
        return {"function": None, "function_source": None}
    return {"function": _callable_name(function), "function_source": _callable_source_digest(function)}


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
