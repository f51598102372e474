"""Hyperparameter tuning, named as in SageMaker: ``TuningStep``, ``HyperparameterTuner``,
``IntegerParameter``, ``ContinuousParameter``, ``CategoricalParameter``.

A tuning step is a training step run once per trial, as a fan-out (see
:mod:`airflow_provider_mlpipe.model.fanout`): grid search tries every combination of the ranges,
random search ``max_jobs`` combinations drawn with a fixed seed (so a run is repeatable). The best
trial is chosen by a metric of the training's ``metrics`` and an objective (``Minimize`` or
``Maximize``). Outputs: ``model`` and ``metrics`` of the best trial (references to its artifacts,
nothing is copied), ``best_hyperparameters``, and ``trials``: every trial's hyperparameters and metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.code_steps import TrainingStep
from airflow_provider_mlpipe.model.expressions import Expression
from airflow_provider_mlpipe.model.fanout import MAX_FAN_OUT_ITEMS
from airflow_provider_mlpipe.model.tuning_ranges import (
    RANGE_KINDS,
    SCALINGS,
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
    ParameterRange,
    trials,
)

# The ranges and the trials drawn from them live in tuning_ranges; this module keeps the tuning step
# and the import path every caller has used.
__all__ = [
    "OBJECTIVES",
    "RANGE_KINDS",
    "SCALINGS",
    "STRATEGIES",
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperparameterTuner",
    "IntegerParameter",
    "ParameterRange",
    "TuningStep",
    "best_trial",
    "trials",
]

STRATEGIES = ("Grid", "Random")
OBJECTIVES = ("Minimize", "Maximize")


class TuningStep(TrainingStep):
    """Tunes a training step's hyperparameters (SageMaker's ``TuningStep`` with its ``HyperparameterTuner``).

    Takes everything a :class:`TrainingStep` takes (``code`` or ``function``, fixed ``hyperparameters``,
    ``inputs``...), plus:

    :param hyperparameter_ranges: name to ``IntegerParameter``/``ContinuousParameter``/``CategoricalParameter``.
    :param objective_metric_name: the key of the training's ``metrics`` that ranks trials.
    :param objective_type: ``Minimize`` (default) or ``Maximize``.
    :param strategy: ``Grid`` (every combination) or ``Random`` (``max_jobs`` draws).
    :param max_jobs: how many trials random search runs; for grid search, an upper bound.
    :param max_parallel_jobs: how many trials run at once.
    :param random_seed: the seed of random search (the same seed draws the same trials).
    """

    kind = "tuning"

    def __init__(
        self,
        name: str,
        hyperparameter_ranges: Mapping[str, ParameterRange],
        objective_metric_name: str,
        objective_type: str = "Minimize",
        strategy: str = "Grid",
        max_jobs: int | None = None,
        max_parallel_jobs: int | None = None,
        random_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if not hyperparameter_ranges:
            raise SpecError(
                "a tuning step needs hyperparameter_ranges", step=name, field="hyperparameter_ranges"
            )
        for key, value_range in hyperparameter_ranges.items():
            if not isinstance(value_range, ParameterRange):
                raise SpecError(
                    f"expected IntegerParameter, ContinuousParameter or CategoricalParameter, got {value_range!r}",
                    step=name,
                    field=f"hyperparameter_ranges.{key}",
                )
            value_range.check(step=name, field=f"hyperparameter_ranges.{key}")
            if key in self.hyperparameters:
                raise SpecError(
                    f"hyperparameter {key!r} is both fixed and tuned",
                    step=name,
                    field=f"hyperparameter_ranges.{key}",
                )
        if not isinstance(objective_metric_name, str) or not objective_metric_name:
            raise SpecError(
                "objective_metric_name must name a metric", step=name, field="objective_metric_name"
            )
        for value, choices, field in (
            (objective_type, OBJECTIVES, "objective_type"),
            (strategy, STRATEGIES, "strategy"),
        ):
            if value not in choices:
                raise SpecError(
                    f"{field} must be one of {', '.join(choices)}, got {value!r}", step=name, field=field
                )
        for count, field in ((max_jobs, "max_jobs"), (max_parallel_jobs, "max_parallel_jobs")):
            if count is not None and (
                isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_FAN_OUT_ITEMS
            ):
                raise SpecError(
                    f"{field} must be an integer from 1 to {MAX_FAN_OUT_ITEMS}, got {count!r}",
                    step=name,
                    field=field,
                )
        if strategy == "Random" and max_jobs is None:
            raise SpecError(
                "random search needs max_jobs (how many trials to draw)", step=name, field="max_jobs"
            )
        self.hyperparameter_ranges = dict(hyperparameter_ranges)
        self.objective_metric_name = objective_metric_name
        self.objective_type = objective_type
        self.strategy = strategy
        self.max_jobs = max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.random_seed = random_seed
        if all(_literal_range(value_range) for value_range in self.hyperparameter_ranges.values()):
            self.trials()  # a grid too large, or a Continuous range in a grid: refused at parse time

    @property
    def is_fan_out(self) -> bool:
        return True

    @property
    def concurrency(self) -> int | None:
        return self.max_parallel_jobs

    def trials(self, evaluate: Callable[[Any], Any] | None = None) -> list[dict[str, Any]]:
        """Each trial's tuned hyperparameters (bounds evaluated with ``evaluate`` at run time)."""
        ranges = {
            key: value_range.resolved(evaluate) if evaluate is not None else value_range
            for key, value_range in self.hyperparameter_ranges.items()
        }
        return trials(
            self.name, ranges, strategy=self.strategy, max_jobs=self.max_jobs, seed=self.random_seed
        )

    def fan_out_items(self, evaluate: Callable[[Any], Any]) -> list[Any]:
        return self.trials(evaluate)

    def output_names(self) -> list[str]:
        return ["model", "metrics", "best_hyperparameters", "trials"]

    def trial_output_names(self) -> list[str]:
        """What each trial produces: a training step's outputs."""
        return ["model", "metrics"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield from super().inputs()
        for key, value_range in self.hyperparameter_ranges.items():
            for index, bound in enumerate(value_range.references()):
                yield f"hyperparameter_ranges.{key}[{index}]", bound

    def _definition_fields(self) -> dict[str, Any]:
        return {
            **super()._definition_fields(),
            "hyperparameter_ranges": {
                key: value.to_dict() for key, value in self.hyperparameter_ranges.items()
            },
            "objective_metric_name": self.objective_metric_name,
            "objective_type": self.objective_type,
            "strategy": self.strategy,
            "max_jobs": self.max_jobs,
            "max_parallel_jobs": self.max_parallel_jobs,
            "random_seed": self.random_seed,
        }


def _literal_range(value_range: ParameterRange) -> bool:
    return not any(isinstance(value, Expression) for value in value_range.__dict__.values())


@dataclass
class HyperparameterTuner:
    """SageMaker's ``HyperparameterTuner``: the search, given to ``TuningStep.from_tuner``.

    :param estimator: the training to tune, as a :class:`TrainingStep` (its name is not used).
    """

    estimator: TrainingStep
    objective_metric_name: str
    hyperparameter_ranges: Mapping[str, ParameterRange]
    objective_type: str = "Minimize"
    strategy: str = "Grid"
    max_jobs: int | None = None
    max_parallel_jobs: int | None = None
    random_seed: int = 0

    def step(self, name: str, **kwargs: Any) -> TuningStep:
        """The :class:`TuningStep` called ``name`` that runs this search (``kwargs``: depends_on, retry...)."""
        estimator = self.estimator
        return TuningStep(
            name,
            hyperparameter_ranges=self.hyperparameter_ranges,
            objective_metric_name=self.objective_metric_name,
            objective_type=self.objective_type,
            strategy=self.strategy,
            max_jobs=self.max_jobs,
            max_parallel_jobs=self.max_parallel_jobs,
            random_seed=self.random_seed,
            code=estimator.code,
            function=estimator.function,
            hyperparameters=estimator.hyperparameters,
            inputs=estimator.channels,
            command=estimator.command,
            env=estimator.env,
            pass_env=estimator.pass_env,
            **kwargs,
        )


def best_trial(step_name: str, results: Sequence[Mapping[str, Any]], metric: str, objective: str) -> int:
    """The index of the best trial in ``results`` (each ``{"metrics": {...}}``); the first on a tie.

    :raises StepExecutionError: no trial reported the metric as a number.
    """
    from airflow_provider_mlpipe.exceptions import StepExecutionError

    scored = []
    for index, result in enumerate(results):
        value = (result.get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            scored.append((value if objective == "Minimize" else -value, index))
    if not scored:
        raise StepExecutionError(
            f"tuning step {step_name!r}: no trial reported the objective metric {metric!r} as a finite number "
            f"(metrics seen: {sorted({key for result in results for key in (result.get('metrics') or {})})})"
        )
    return min(scored)[1]
