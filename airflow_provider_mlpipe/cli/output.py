"""Plain-text tables for the ``mlpipe`` command."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.selective.manifest import is_step_task_id

if TYPE_CHECKING:
    from airflow_provider_mlpipe.client.executions import ExecutionDescription, StepExecution


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns with a dashed rule under the headers."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def clock(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value else "-"


def summarise_outputs(outputs: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """``train=directory:1a2b3c4d, ..., outcome=True``: output references and notable metadata."""
    parts = []
    for name, ref in outputs.items():
        digest = str(ref.get("digest", "")).removeprefix("sha256:")[:8]
        parts.append(f"{name}={ref.get('type')}:{digest}")
    for key in ("outcome", "version"):
        if key in metadata:
            parts.append(f"{key}={metadata[key]}")
    return ", ".join(parts)


def summary(reason: str, limit: int = 100) -> str:
    """A reason on one line: its last non-empty line (where a script or an exception says what went
    wrong), cut to ``limit`` characters."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()] or [""]
    last = lines[-1]
    return last if len(last) <= limit else last[: limit - 3] + "..."


def steps_table(steps: Sequence[StepExecution]) -> str:
    """One row per step: status, attempts, times, outputs, where a reused step came from, and why a
    failed step failed (the whole reason is in :func:`failure_lines`)."""
    rows = []
    for step in steps:
        if not is_step_task_id(step.step_name):
            continue
        duration = (
            f"{(step.end_time - step.start_time).total_seconds():.1f}s"
            if step.start_time and step.end_time and step.attempts
            else "-"
        )
        detail = summarise_outputs(step.outputs, step.metadata)
        if step.cache_hit:
            detail = f"cache hit: outputs of run {step.source_run_id}" + (f"; {detail}" if detail else "")
        elif step.attempts == 0 and step.note:
            detail = f"{step.note}" + (f"; {detail}" if detail else "")
        if step.failure_reason and step.status in ("failed", "up_for_retry"):
            detail = summary(step.failure_reason)
        rows.append(
            (
                step.step_name,
                step.status or "none",
                step.attempts,
                clock(step.start_time),
                clock(step.end_time),
                duration,
                detail,
            )
        )
    return format_table(["step", "status", "tries", "start", "end", "duration", "outputs / note"], rows)


def execution_lines(description: ExecutionDescription) -> list[str]:
    """A short description of one execution."""
    lines = [
        f"execution   {description.execution_id}",
        f"pipeline    {description.pipeline_name}",
        f"status      {description.status}",
        f"started     {description.start_time or '-'}",
        f"ended       {description.end_time or '-'}",
        f"parameters  {description.parameters or '{} (defaults)'}",
    ]
    if description.selective_execution:
        block = description.selective_execution
        lines.append(
            f"selective   {', '.join(block.get('selected_steps', []))} "
            f"(reused from {block.get('source_run_id')}: {', '.join(block.get('reused_steps', [])) or 'none'})"
        )
    if description.no_cache:
        lines.append("cache       ignored (no_cache): every step ran")
    if description.note:
        lines.append(f"note        {description.note}")
    if description.failure_reason:
        first, *rest = description.failure_reason.splitlines() or [""]
        lines.append(f"failure     {first}")
        lines += [f"            {line}" for line in rest]
    return lines


def failure_lines(steps: Sequence[StepExecution]) -> list[str]:
    """Why each failed step failed, in full (a script's last output lines, indented)."""
    lines = []
    for step in steps:
        if (
            step.failure_reason
            and step.status in ("failed", "up_for_retry")
            and is_step_task_id(step.step_name)
        ):
            lines.append(f"Step {step.step_name} failed (try {step.attempts}):")
            lines += [f"    {line}" for line in step.failure_reason.splitlines()]
    return lines
