"""Condition step: evaluate conditions, follow the if or else branch, skip the other."""

from __future__ import annotations

from typing import Any

from airflow.sdk import SkipMixin

from airflow_provider_mlpipe.model.steps import ConditionStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime


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
        taken, not_taken = (step.if_steps, step.else_steps) if outcome else (step.else_steps, step.if_steps)
        self.log.info("Conditions %s: %s; following %s", [c.to_dict() for c in step.conditions], outcome, taken)
        follow = [task_id for task_id in self.downstream_task_ids if task_id not in not_taken]
        self.skip_all_except(runtime.context["ti"], follow)
        return {"outcome": outcome}, {"outcome": outcome, "branch": "if" if outcome else "else", "taken": taken}
