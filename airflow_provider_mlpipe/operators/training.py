"""Training step: a script in SageMaker's script mode, or a callable, producing a model and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.steps import TrainingStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.function import import_callable
from airflow_provider_mlpipe.operators.processing import as_argument
from airflow_provider_mlpipe.operators.scripts import env_name, run_script


class MlpipeTrainingOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.TrainingStep`.

    Script mode: channels in ``SM_CHANNEL_<NAME>``, the model written into ``SM_MODEL_DIR``, metrics
    as ``metrics.json`` in ``SM_OUTPUT_DATA_DIR``, hyperparameters as ``--name value`` and ``SM_HPS``.
    """

    step_kind = "training"

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, TrainingStep)
        hyperparameters = self.hyperparameters(runtime)
        channels = {
            name: runtime.stage_input(source, runtime.workdir / "input" / "data" / name, input_name=name)
            for name, source in step.channels.items()
        }
        model_dir = runtime.workdir / "model"
        output_dir = runtime.workdir / "output" / "data"
        model_dir.mkdir(parents=True)
        output_dir.mkdir(parents=True)
        if step.function is not None:
            function = import_callable(step.function, base_dir=step.base_dir)
            metrics = function(hyperparameters=hyperparameters, channels=channels, model_dir=model_dir) or {}
        else:
            assert step.code is not None
            metrics = self._run_script(runtime, step, hyperparameters, channels, model_dir, output_dir)
        if not isinstance(metrics, dict):
            raise StepExecutionError(f"training step {step.name!r}: metrics must be a dict, got {metrics!r}")
        if not any(model_dir.iterdir()):
            raise StepExecutionError(f"training step {step.name!r} wrote no model into {model_dir}")
        self.log.info("Metrics: %s", metrics)
        return {"model": model_dir, "metrics": metrics}, {"metrics": metrics}

    def hyperparameters(self, runtime: StepRuntime) -> dict[str, Any]:
        """The hyperparameters of this run, evaluated (a tuning trial adds its own)."""
        step = self.step
        assert isinstance(step, TrainingStep)
        return {key: runtime.evaluate(value) for key, value in step.hyperparameters.items()}

    def _run_script(
        self,
        runtime: StepRuntime,
        step: TrainingStep,
        hyperparameters: dict[str, Any],
        channels: dict[str, Path],
        model_dir: Path,
        output_dir: Path,
    ) -> dict[str, Any]:
        assert step.code is not None
        env = {
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(hyperparameters),
        }
        env.update({f"SM_CHANNEL_{env_name(name)}": str(path) for name, path in channels.items()})
        env.update({f"SM_HP_{env_name(key)}": as_argument(value) for key, value in hyperparameters.items()})
        env.update({key: as_argument(runtime.evaluate(value)) for key, value in step.env.items()})
        arguments = [
            text for key, value in hyperparameters.items() for text in (f"--{key}", as_argument(value))
        ]
        command = [*(step.command or [sys.executable]), str(step.resolve_path(step.code)), *arguments]
        run_script(
            self, command, env=env, cwd=runtime.workdir, pass_env=step.pass_env, secrets=runtime.secret_values
        )
        metrics_file = output_dir / "metrics.json"
        if not metrics_file.is_file():
            return {}
        try:
            return json.loads(metrics_file.read_text())
        except ValueError as error:
            raise StepExecutionError(
                f"training step {step.name!r}: metrics.json is not JSON: {error}"
            ) from None
