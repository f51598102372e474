"""What an unselected step does when it starts in a selective run: only after it was cleared.

A selective run records its unselected steps when it is created (reused, or skipped with a reason),
so none of them ever starts a task process. Clearing the run (or some of its tasks) in Airflow sets
them back to "no state" and the scheduler starts them. Running them for real would silently turn a
reused step into a fresh computation under a note that says "reused from run X". Instead:

- a reused step takes the reference run's outputs again (references only, no work) and keeps its
  note: clearing a selective run re-runs exactly its selected steps;
- a step that was not run (downstream of the selection, or skipped in the reference run) skips
  itself again, saying why.

To recompute an unselected step, start a selective run that selects it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_provider_mlpipe.selective.model import CONF_KEY

log = logging.getLogger(__name__)
RETURN_VALUE = "return_value"


def applied_selective_block(conf: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The selective block of a run whose reused steps were recorded, or None for another run."""
    block = (conf or {}).get(CONF_KEY)
    if isinstance(block, Mapping) and "reused_steps" in block:
        return block
    return None


def reapply_unselected_step(step_name: str, context: Any) -> dict[str, Any] | None:
    """In a selective run, re-apply what the run decided for the unselected step ``step_name``.

    Returns the reused record to push as the task's return value, raises ``AirflowSkipException``
    for a step the run does not run, and returns None for a selected step or any other run.

    :param step_name: the step (task id).
    :param context: the Airflow task context.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    block = applied_selective_block(getattr(context.get("dag_run"), "conf", None))
    if block is None or step_name in (block.get("selected_steps") or ()):
        return None
    source = str(block.get("source_run_id"))
    if step_name in (block.get("reused_steps") or ()):
        record = context["ti"].xcom_pull(task_ids=step_name, key=RETURN_VALUE, run_id=source)
        if not isinstance(record, Mapping) or "outputs" not in record:
            raise AirflowFailException(
                f"step {step_name!r} was reused from run {source} in this selective run and was cleared, "
                f"but run {source} no longer holds its outputs; start a selective run that selects it"
            )
        log.info(
            "Step %s was cleared: it is not selected in this selective run, so it takes the outputs of "
            "run %s again instead of running. To recompute it, start a selective run that selects it.",
            step_name,
            source,
        )
        return {**record, "source_run_id": source, "origin_run_id": record.get("origin_run_id", source)}
    reason = (block.get("not_run") or {}).get(step_name) or _reused_skipped_reason(block, step_name, source)
    raise AirflowSkipException(
        f"step {step_name!r} is not selected in this selective run ({reason}); clearing it does not run "
        "it: start a selective run that selects it"
    )


def _reused_skipped_reason(block: Mapping[str, Any], step_name: str, source: str) -> str:
    origins = block.get("reused_skipped_steps") or {}
    if step_name in origins:
        return f"skipped in run {origins[step_name]}, where its branch was not taken"
    return f"not selected; other steps come from run {source}"
