"""A tuning step's tasks: each trial is a training run (``_<step>.each``, one mapped task instance per
trial), and the step's own task chooses the best trial by the objective metric."""

from __future__ import annotations

from typing import Any

from airflow_provider_mlpipe.model.tuning import TuningStep, best_trial
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.fanout import item_records, output_refs
from airflow_provider_mlpipe.operators.training import MlpipeTrainingOperator


class MlpipeTuningTrialOperator(MlpipeTrainingOperator):
    """One trial of a :class:`~airflow_provider_mlpipe.model.tuning.TuningStep`: the training with the
    trial's hyperparameters (its item) over the fixed ones."""

    def hyperparameters(self, runtime: StepRuntime) -> dict[str, Any]:
        return {**super().hyperparameters(runtime), **dict(self.mlpipe_item or {})}


class MlpipeTuningOperator(MlpipeStepOperator):
    """A tuning step's own task: outputs the best trial's ``model`` and ``metrics`` (references to the
    trial's artifacts), its ``best_hyperparameters``, and every trial's hyperparameters and metrics
    (``trials``); the metadata says which trial won and by how much."""

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, TuningStep)
        items, records = item_records(step.name, runtime.context)
        results = [
            {
                "trial": index,
                "hyperparameters": item,
                "metrics": (record.get("metadata") or {}).get("metrics") or {},
            }
            for index, (item, record) in enumerate(zip(items, records, strict=True))
        ]
        best = best_trial(step.name, results, step.objective_metric_name, step.objective_type)
        fixed = {key: runtime.evaluate(value) for key, value in step.hyperparameters.items()}
        best_hyperparameters = {**fixed, **items[best]}
        value = results[best]["metrics"][step.objective_metric_name]
        self.log.info(
            "Best of %d trials: #%d %s, %s = %s (%s)",
            len(results),
            best,
            items[best],
            step.objective_metric_name,
            value,
            step.objective_type,
        )
        outputs = {
            "model": output_refs(records, "model")[best],
            "metrics": output_refs(records, "metrics")[best],
            "best_hyperparameters": best_hyperparameters,
            "trials": results,
        }
        metadata = {
            "best_trial": best,
            "objective": {"metric": step.objective_metric_name, "type": step.objective_type, "value": value},
            "best_hyperparameters": best_hyperparameters,
            "trials": results,
        }
        return outputs, metadata
