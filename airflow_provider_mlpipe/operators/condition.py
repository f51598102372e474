"""Condition step: evaluate conditions, follow the if or else branch, skip the other."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import SkipMixin

from airflow_provider_mlpipe.model.steps import ConditionStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime

if TYPE_CHECKING:
    from airflow.sdk import Context


class MlpipeConditionOperator(MlpipeStepOperator, SkipMixin):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.ConditionStep`.

    Output ``outcome`` (bool). Direct downstream steps in the branch not taken are skipped; steps
    after the condition that are in neither branch run as usual.
    """

    step_kind = "condition"
    inherits_from_skipmixin = True

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, ConditionStep)
        outcome = all(condition.evaluate(runtime) for condition in step.conditions)
        taken = step.if_steps if outcome else step.else_steps
        self.log.info(
            "Conditions %s: %s; following %s", [c.to_dict() for c in step.conditions], outcome, taken
        )
        return {"outcome": outcome}, {
            "outcome": outcome,
            "branch": "if" if outcome else "else",
            "taken": taken,
        }

    def after_record(self, context: Context, record: dict) -> None:
        step = self.step
        assert isinstance(step, ConditionStep)
        not_taken = step.else_steps if record["metadata"]["outcome"] else step.if_steps
        follow = [task_id for task_id in self.downstream_task_ids if task_id not in not_taken]
        # Skipping ends the task through an exception in Airflow 3, before the return value would be
        # pushed: push the record (with the outcome) first.
        context["ti"].xcom_push(key="return_value", value=record)
        self.skip_all_except(context["ti"], follow)
