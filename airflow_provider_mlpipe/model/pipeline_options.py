"""What a pipeline's options accept: its name, schedule, parallelism and concurrent executions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError

PIPELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
# Airflow's presets; anything else must be a cron expression (five or six fields).
SCHEDULE_PRESETS = (
    "@once",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@continuous",
)
# Airflow's own ceiling for max_active_tasks and max_active_runs is far above; this catches typos.
MAX_PARALLEL = 10_000


@dataclass(frozen=True)
class ParallelismConfiguration:
    """How many steps of one execution run at once (SageMaker's ``ParallelismConfiguration``); mapped
    to the DAG's ``max_active_tasks``.

    :param max_parallel_execution_steps: at most this many steps (or fan-out items) at once.
    """

    max_parallel_execution_steps: int

    def __post_init__(self) -> None:
        check_count(self.max_parallel_execution_steps, "parallelism.max_parallel_execution_steps")


def check_count(value: Any, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL:
        raise SpecError(
            f"{field.rsplit('.', 1)[-1]} must be an integer from 1 to {MAX_PARALLEL}, got {value!r}",
            field=field,
        )


def check_schedule(schedule: Any) -> str | None:
    """A pipeline's ``schedule``: None (runs only when started), an Airflow preset or a cron expression."""
    if schedule is None:
        return None
    if not isinstance(schedule, str) or not schedule.strip():
        raise SpecError(
            f"schedule must be a cron expression, a preset or null, got {schedule!r}", field="schedule"
        )
    text = schedule.strip()
    if text.startswith("@"):
        if text not in SCHEDULE_PRESETS:
            raise SpecError(
                f"unknown schedule preset {text!r} (known: {', '.join(SCHEDULE_PRESETS)})", field="schedule"
            )
        return text
    from croniter import croniter

    if not croniter.is_valid(text):
        raise SpecError(f"schedule {text!r} is not a valid cron expression", field="schedule")
    return text
