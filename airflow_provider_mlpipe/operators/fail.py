"""Fail step: stop the execution as failed with a message (no retry)."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_mlpipe.model.steps import FailStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.processing import as_argument


class MlpipeFailOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.FailStep`: always fails, never retried."""

    step_kind = "fail"
    ui_color = "#fbe3e3"

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, FailStep)
        message = as_argument(runtime.evaluate(step.error_message)) or f"fail step {step.name!r} reached"
        raise AirflowFailException(message)
