"""A loop's tasks (see :mod:`airflow_provider_mlpipe.model.loops`): the exit test after each iteration,
the gate every later iteration's step passes, and the loop step that takes the last iteration's outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException, DownstreamTasksSkipped

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.fanout import each_task_id, items_task_id
from airflow_provider_mlpipe.model.loops import LoopCondition, LoopStep, iteration_step_name
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.condition import MlpipeConditionOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def check_loop_gate(runtime: StepRuntime, gate: str) -> None:
    """Skip a step of iteration ``i`` unless the exit test of iteration ``i - 1`` ran and said "go on".

    The exit test skips the later iterations itself when the loop ends; this covers the other ways
    an iteration can be left behind (its exit test skipped or cleared), so no step of an iteration
    after the loop ended ever runs.
    """
    record = runtime.record(gate)  # skips when the test did not run
    if (record.get("metadata") or {}).get("outcome") is True:
        raise AirflowSkipException(
            f"step {runtime.step.name!r} is not run: the loop ended before its iteration ({gate} held)"
        )


class MlpipeLoopConditionOperator(MlpipeConditionOperator):
    """The exit test of one iteration: when its conditions hold, every later iteration is skipped
    (before any of it starts); otherwise the next iteration runs."""

    def after_record(self, context: Context, record: dict) -> None:
        step = self.step
        assert isinstance(step, LoopCondition)
        if not record["metadata"]["outcome"]:
            return
        later: list[str] = []
        for name in step.later_steps:
            later.append(name)
            if self.pipeline.steps[name].is_fan_out:
                later += [items_task_id(name), each_task_id(name)]
        self.log.info("Loop %s ends after iteration %d; skipping %s", step.loop, step.iteration, later)
        if not later:
            return
        # Skipping ends the task through an exception, before the return value would be pushed.
        context["ti"].xcom_push(key="return_value", value=record)
        raise DownstreamTasksSkipped(tasks=later)


class MlpipeLoopOperator(MlpipeStepOperator):
    """The loop step: its outputs are those of the last iteration that ran (references only)."""

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mlpipe.artifacts.reference import ArtifactRef

        step = self.step
        assert isinstance(step, LoopStep)
        ti = runtime.context["ti"]
        last, condition_met = step.max_iterations, False
        if step.until:
            ran = []
            for iteration in range(1, step.max_iterations + 1):
                record = ti.xcom_pull(task_ids=step.check_name(iteration), key="return_value")
                if isinstance(record, dict):
                    ran.append((iteration, bool((record.get("metadata") or {}).get("outcome"))))
            if not ran:
                raise StepExecutionError(f"loop {step.name!r}: no iteration finished")
            last, condition_met = ran[-1]
        outputs: dict[str, Any] = {}
        for output, reference in step.outputs.items():
            producer = iteration_step_name(step.name, last, reference.step_name)
            record = ti.xcom_pull(task_ids=producer, key="return_value")
            refs = record.get("outputs") if isinstance(record, dict) else None
            if not refs or reference.output_name not in refs:
                raise StepExecutionError(
                    f"loop {step.name!r}: output {output!r} comes from step {producer!r}, which did not run "
                    f"in iteration {last}"
                )
            outputs[output] = ArtifactRef.from_dict(refs[reference.output_name])
        self.log.info(
            "Loop %s ran %d iteration(s); %s",
            step.name,
            last,
            "its condition held" if condition_met else "the last one ran",
        )
        metadata = {"iterations": last, "max_iterations": step.max_iterations, "condition_met": condition_met}
        return outputs, metadata
