"""Processing step: a script run as a subprocess with named input and output directories."""

from __future__ import annotations

import sys
from typing import Any

from airflow_provider_mlpipe.model.steps import ProcessingStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.scripts import env_name, run_script


def as_argument(value: Any) -> str:
    """Render an evaluated value as command-line or environment text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class MlpipeProcessingOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.ProcessingStep`.

    The script finds each input in ``MLPIPE_INPUT_<NAME>`` and writes each output into
    ``MLPIPE_OUTPUT_<NAME>``; each output directory becomes a directory artifact.
    """

    step_kind = "processing"

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, ProcessingStep)
        env: dict[str, str] = {}
        for item in step.processing_inputs:
            directory = runtime.stage_input(
                item.source, runtime.workdir / "input" / item.input_name, input_name=item.input_name
            )
            env[f"MLPIPE_INPUT_{env_name(item.input_name)}"] = str(directory)
        outputs = {}
        for name in step.output_names():
            directory = runtime.workdir / "output" / name
            directory.mkdir(parents=True)
            env[f"MLPIPE_OUTPUT_{env_name(name)}"] = str(directory)
            outputs[name] = directory
        env.update({key: as_argument(runtime.evaluate(value)) for key, value in step.env.items()})
        arguments = [as_argument(runtime.evaluate(value)) for value in step.job_arguments]
        command = [*(step.command or [sys.executable]), str(step.resolve_path(step.code)), *arguments]
        run_script(
            self, command, env=env, cwd=runtime.workdir, pass_env=step.pass_env, secrets=runtime.secret_values
        )
        return outputs, {}
