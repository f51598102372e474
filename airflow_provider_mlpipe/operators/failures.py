"""Why a step failed, kept where users look for it.

When a step fails, its operator pushes the XCom ``mlpipe_failure`` = ``{"reason", "try_number"}``
before the exception goes on to Airflow, and logs the reason as an ERROR line in the task log.
Airflow clears a task's XComs when its next try starts, so each try records its own reason. The
executions API reads the XCom as the step's ``failure_reason``; the scheduler listener (and the
local runner) copy it into the note of the failed task instance (see :mod:`~airflow_provider_mlpipe.dagruns`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mlpipe.dagruns import FAILURE_KEY
from airflow_provider_mlpipe.exceptions import MlpipeError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

# A reason is read in a table, a note and a log line: long enough for a script's last lines.
MAX_REASON_CHARS = 4500

# How much of a failed script's output its error keeps: the end, where scripts say what went wrong.
SCRIPT_TAIL_LINES = 20
SCRIPT_TAIL_CHARS = 4096

Execute = TypeVar("Execute", bound=Callable[..., Any])


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, keeping its start (what failed) and its end (the error)."""
    if len(text) <= limit:
        return text
    head = limit // 4
    return f"{text[:head]}\n[...]\n{text[-(limit - head - 7) :]}"


def script_tail(lines: Iterable[str]) -> str:
    """The end of an error message about a failed script: its last output lines (at most
    ``SCRIPT_TAIL_CHARS``), or that it printed nothing."""
    kept: list[str] = []
    size = 0
    for line in reversed([line for line in lines if line.strip()]):
        size += len(line) + 1
        if size > SCRIPT_TAIL_CHARS and kept:
            break
        kept.append(line)
    if not kept:
        return " (it printed nothing)"
    return "; its last output lines:\n" + "\n".join(reversed(kept))


def failure_reason(error: BaseException) -> str:
    """The reason a step failed, as a user reads it.

    The provider's own errors and ``AirflowFailException`` (a Fail step's message) already say what
    went wrong; any other exception is named by its type, as Python prints it.
    """
    from airflow.sdk.exceptions import AirflowFailException

    text = str(error).strip()
    if not isinstance(error, (MlpipeError, AirflowFailException)):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return bounded(text or type(error).__name__)


def _not_failures() -> tuple[type[BaseException], ...]:
    """Exceptions by which a task ends without failing: skips, deferrals, reschedules."""
    from airflow.sdk.exceptions import (
        AirflowRescheduleException,
        AirflowSkipException,
        DownstreamTasksSkipped,
        TaskDeferred,
    )

    return (AirflowSkipException, DownstreamTasksSkipped, TaskDeferred, AirflowRescheduleException)


def record_failure(operator: BaseOperator, context: Context, error: BaseException) -> None:
    """Log the reason ``error`` gives as an ERROR line and push it as the ``mlpipe_failure`` XCom.

    Never raises: the original error is what Airflow must see.
    """
    ti = context["ti"]
    reason = failure_reason(error)
    try_number = int(getattr(ti, "try_number", 0) or 0)
    operator.log.error("Step %s failed on try %d: %s", operator.task_id, try_number, reason)
    try:
        ti.xcom_push(key=FAILURE_KEY, value={"reason": reason, "try_number": try_number})
    except Exception:  # the task is failing already; a lost reason must not hide the real error
        operator.log.warning(
            "Could not record the failure reason of step %s", operator.task_id, exc_info=True
        )


def records_failures(execute: Execute) -> Execute:
    """Decorate an operator's ``execute`` so that a failure records its reason (see module doc)."""

    @functools.wraps(execute)
    def wrapper(self: BaseOperator, context: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, context, *args, **kwargs)
        except BaseException as error:
            if not isinstance(error, _not_failures()):
                record_failure(self, context, error)
            raise

    return wrapper  # type: ignore[return-value]
