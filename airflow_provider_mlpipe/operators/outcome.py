"""The outcome task: the last task of every pipeline's DAG, so that Airflow itself gives an execution
the right final state.

Airflow calls a run successful when its leaf tasks succeeded or were skipped. A selective run records
the steps after its selection as skipped before anything runs, so a failed selected step would leave
every leaf "skipped" and the run "success". The outcome task comes after every step with the trigger
rule ``none_failed``: when any step failed (or could not run because one failed) it ends
``upstream_failed`` and the run fails, in the scheduler's own state decision, so callbacks, listeners
and the UI all see "failed". Otherwise it succeeds. It is an ``EmptyOperator``: the scheduler marks it
done without starting a task process, so it costs an execution nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule

from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID


class MlpipeOutcomeOperator(EmptyOperator):
    """Fails the execution when any step failed; see the module docstring."""

    ui_color = "#f0f0f0"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("task_display_name", "pipeline outcome")
        kwargs.setdefault(
            "doc_md",
            "Ends `upstream_failed` (and fails the execution) when any step failed; "
            "succeeds otherwise. Not a step: the scheduler completes it without running anything.",
        )
        super().__init__(task_id=OUTCOME_TASK_ID, trigger_rule=TriggerRule.NONE_FAILED, **kwargs)
