"""Filters of ``list_executions(status=..., since=..., limit=...)``, shared by both sessions and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from airflow_provider_mlpipe.exceptions import MlpipeError

EXECUTION_STATUSES = ("queued", "running", "success", "failed")
MAX_LIMIT = 1000
_AGO = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ExecutionFilterError(MlpipeError, ValueError):
    """A ``status``, ``since`` or ``limit`` that ``list_executions`` cannot filter by."""


def checked_statuses(status: str | Iterable[str] | None) -> list[str] | None:
    """``status`` as a list of known statuses (``"failed"``, ``["success", "failed"]``, ``"success,failed"``)."""
    if status is None:
        return None
    names = [part.strip() for part in status.split(",")] if isinstance(status, str) else list(status)
    unknown = [name for name in names if name not in EXECUTION_STATUSES]
    if unknown or not names:
        raise ExecutionFilterError(
            f"unknown execution status {', '.join(map(repr, unknown)) or 'none given'}; "
            f"known: {', '.join(EXECUTION_STATUSES)}"
        )
    return names


def checked_since(since: datetime | str | None, *, now: datetime | None = None) -> datetime | None:
    """``since`` as an aware datetime: a datetime (naive means UTC), ISO text (``2026-01-31``,
    ``2026-01-31T12:00:00+01:00``) or a time ago (``30m``, ``12h``, ``7d``, ``2w``)."""
    if since is None:
        return None
    if isinstance(since, str):
        text = since.strip()
        match = _AGO.match(text)
        if match:
            ago = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return (now or datetime.now(timezone.utc)) - ago
        try:
            since = datetime.fromisoformat(text)
        except ValueError:
            raise ExecutionFilterError(
                f"since must be a date or time (2026-01-31, 2026-01-31T12:00:00Z) or a time ago (30m, 12h, 7d), "
                f"got {text!r}"
            ) from None
    if not isinstance(since, datetime):
        raise ExecutionFilterError(f"since must be a datetime, got {since!r}")
    return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)


def checked_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ExecutionFilterError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit
