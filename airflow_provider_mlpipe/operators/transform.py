"""Transform step: batch inference of a trained or registered model over a data set."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.expressions import StepOutput
from airflow_provider_mlpipe.model.transform import TransformStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.function import import_callable
from airflow_provider_mlpipe.operators.processing import as_argument
from airflow_provider_mlpipe.operators.scripts import run_script


class MlpipeTransformOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.transform.TransformStep`."""

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mlpipe.artifacts.serializers import materialize

        step = self.step
        assert isinstance(step, TransformStep)
        model_ref, model_source = self._model(runtime, step)
        model_dir = runtime.workdir / "model"
        model_dir.mkdir(parents=True)
        materialize(runtime.store, model_ref, model_dir)
        data_dir = runtime.stage_input(step.data, runtime.workdir / "data", input_name="data")
        output_dir = runtime.workdir / "predictions"
        output_dir.mkdir(parents=True)
        if step.function is not None:
            function = import_callable(step.function, base_dir=step.base_dir)
            function(model_dir=model_dir, data_dir=data_dir, output_dir=output_dir)
        else:
            assert step.code is not None
            env = {
                "MLPIPE_MODEL_DIR": str(model_dir),
                "MLPIPE_INPUT_DATA": str(data_dir),
                "MLPIPE_OUTPUT_PREDICTIONS": str(output_dir),
            }
            env.update({key: as_argument(runtime.evaluate(value)) for key, value in step.env.items()})
            arguments = [as_argument(runtime.evaluate(value)) for value in step.arguments]
            command = [*(step.command or [sys.executable]), str(step.resolve_path(step.code)), *arguments]
            run_script(
                self,
                command,
                env=env,
                cwd=runtime.workdir,
                pass_env=step.pass_env,
                secrets=runtime.secret_values,
            )
        if not any(output_dir.iterdir()):
            raise StepExecutionError(f"transform step {step.name!r} wrote no predictions into {output_dir}")
        return {"predictions": Path(output_dir)}, {"model": model_source}

    def _model(self, runtime: StepRuntime, step: TransformStep) -> tuple[Any, dict[str, Any]]:
        """The model's artifact reference, and where it came from (for the record)."""
        from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
        from airflow_provider_mlpipe.artifacts.registry import ModelRegistry

        if step.model_data is not None:
            if not isinstance(step.model_data, StepOutput):
                raise StepExecutionError(f"step {step.name!r}: model_data must be another step's output")
            ref = runtime.output_ref(step.model_data.step_name, step.model_data.output_name)
            if ref.type == "directory":
                return ref, {"step": step.model_data.step_name, "output": step.model_data.output_name}
            package = runtime.evaluate(step.model_data)
            if not isinstance(package, dict) or "group" not in package or "version" not in package:
                raise StepExecutionError(
                    f"step {step.name!r}: model_data {step.model_data.to_dict()!r} is neither a model folder "
                    f"nor a model package, got {type(package).__name__}"
                )
            group, version = str(package["group"]), package["version"]
        else:
            group, version = (
                str(runtime.evaluate(step.model_package_group_name)),
                runtime.evaluate(step.model_version),
            )
        registry = ModelRegistry(runtime.store)
        if version in TransformStep.LATEST:
            status = "Approved" if version == "latest-approved" else None
            found = registry.latest(group, approval_status=status)
            if found is None:
                which = "approved version" if status else "version"
                raise StepExecutionError(f"step {step.name!r}: model group {group!r} has no {which}")
        else:
            found = registry.get(group, int(version))
        self.log.info("Model: %s version %s (%s)", found.group, found.version, found.approval_status)
        return ArtifactRef.from_dict(found.model), {"group": found.group, "version": found.version}
