"""Register-model step: record a model version, with its metrics, in the model registry."""

from __future__ import annotations

from typing import Any

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.expressions import StepOutput
from airflow_provider_mlpipe.model.steps import RegisterModel
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime


class MlpipeRegisterModelOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.RegisterModel` step.

    The registry lives in the artifact store (``registry/<group>/<version>.json``); the model itself
    is referenced, not copied. ``mlpipe models approve|reject`` changes the approval status.
    """

    step_kind = "register_model"

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mlpipe.artifacts.registry import ModelRegistry

        step = self.step
        assert isinstance(step, RegisterModel)
        if not isinstance(step.model_data, StepOutput):
            raise StepExecutionError(f"step {step.name!r}: model_data must be another step's output")
        model = runtime.output_ref(step.model_data.step_name, step.model_data.output_name)
        metrics = runtime.evaluate(step.model_metrics)
        version = ModelRegistry(runtime.store).register(
            str(runtime.evaluate(step.model_package_group_name)),
            model,
            approval_status=str(runtime.evaluate(step.approval_status)),
            metrics=metrics
            if isinstance(metrics, dict)
            else ({"value": metrics} if metrics is not None else None),
            metadata={
                "pipeline": runtime.pipeline.name,
                "execution_id": runtime.context["run_id"],
                "step": step.name,
                "parameters": runtime.parameters,
                **runtime.evaluate(step.metadata),
            },
            description=step.description,
            # A retried task (or a write retried after a lost answer) returns the version this step
            # registered in this run, instead of registering the model twice.
            idempotency_key=f"{runtime.pipeline.name}/{runtime.context['run_id']}/{step.name}",
        )
        package = {
            "group": version.group,
            "version": version.version,
            "approval_status": version.approval_status,
        }
        self.log.info(
            "Registered model %s version %s (%s)", version.group, version.version, version.approval_status
        )
        return {"model_package": package}, package
