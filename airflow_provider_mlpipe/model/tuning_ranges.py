"""Hyperparameter ranges, named as in SageMaker: ``IntegerParameter``, ``ContinuousParameter``,
``CategoricalParameter``; and the trials a search draws from them (every combination, or a seeded
random sample)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.expressions import Expression, to_canonical
from airflow_provider_mlpipe.model.fanout import MAX_FAN_OUT_ITEMS

SCALINGS = ("Auto", "Linear", "Logarithmic")


class ParameterRange:
    """A hyperparameter's range; subclasses are SageMaker's three kinds."""

    kind: ClassVar[str] = ""

    def check(self, *, step: str, field: str) -> None:
        """Refuse an empty or unusable range (literal bounds only: expressions are checked at run time)."""

    def grid(self, *, step: str, field: str) -> list[Any]:
        """Every value, for grid search."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        """One value drawn at random."""
        raise NotImplementedError

    def resolved(self, evaluate: Callable[[Any], Any]) -> ParameterRange:
        """This range with its bounds evaluated (parameters, step outputs)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def references(self) -> Iterator[Any]:
        return iter(self.__dict__.values())


def _number(value: Any, *, integer: bool, step: str, field: str) -> None:
    if isinstance(value, Expression):
        return
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        what = "an integer" if integer else "a finite number"
        raise SpecError(f"{what} is expected, got {value!r}", step=step, field=field)


@dataclass
class _BoundedRange(ParameterRange):
    """What Integer and Continuous ranges share: the bounds, the scaling, their checks and dict form."""

    min_value: Any
    max_value: Any
    scaling_type: str = "Auto"
    # Whether the bounds must be integers (else any finite number).
    integer: ClassVar[bool] = False

    def check(self, *, step: str, field: str) -> None:
        _number(self.min_value, integer=self.integer, step=step, field=f"{field}.min_value")
        _number(self.max_value, integer=self.integer, step=step, field=f"{field}.max_value")
        _check_bounds(self, step=step, field=field)

    def resolved(self, evaluate: Callable[[Any], Any]) -> Self:
        return type(self)(evaluate(self.min_value), evaluate(self.max_value), self.scaling_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "min_value": to_canonical(self.min_value),
            "max_value": to_canonical(self.max_value),
            "scaling_type": self.scaling_type,
        }


@dataclass
class IntegerParameter(_BoundedRange):
    """Integers from ``min_value`` to ``max_value``, both included.

    :param scaling_type: ``Auto``/``Linear`` or ``Logarithmic`` (random search draws on a log scale).
    """

    kind: ClassVar[str] = "Integer"
    integer: ClassVar[bool] = True

    def grid(self, *, step: str, field: str) -> list[Any]:
        return list(range(self.min_value, self.max_value + 1))

    def sample(self, rng: random.Random) -> Any:
        if self.scaling_type == "Logarithmic" and self.min_value > 0:
            return round(math.exp(rng.uniform(math.log(self.min_value), math.log(self.max_value))))
        return rng.randint(self.min_value, self.max_value)


@dataclass
class ContinuousParameter(_BoundedRange):
    """Real numbers from ``min_value`` to ``max_value``: for random search (grid search cannot list them).

    :param scaling_type: ``Auto``/``Linear`` or ``Logarithmic``.
    """

    kind: ClassVar[str] = "Continuous"

    def check(self, *, step: str, field: str) -> None:
        super().check(step=step, field=field)
        if self.scaling_type == "Logarithmic" and _literal(self.min_value) and self.min_value <= 0:
            raise SpecError("a Logarithmic range needs min_value > 0", step=step, field=f"{field}.min_value")

    def grid(self, *, step: str, field: str) -> list[Any]:
        raise SpecError(
            "grid search cannot list a Continuous range: use strategy Random, or a CategoricalParameter "
            "with the values to try",
            step=step,
            field=field,
        )

    def sample(self, rng: random.Random) -> Any:
        if self.scaling_type == "Logarithmic":
            return math.exp(rng.uniform(math.log(self.min_value), math.log(self.max_value)))
        return rng.uniform(self.min_value, self.max_value)


@dataclass
class CategoricalParameter(ParameterRange):
    """A list of values to try (numbers, strings, booleans)."""

    values: Any
    kind: ClassVar[str] = "Categorical"

    def check(self, *, step: str, field: str) -> None:
        if isinstance(self.values, Expression):
            return
        if not isinstance(self.values, (list, tuple)):
            raise SpecError(f"values must be a list, got {self.values!r}", step=step, field=f"{field}.values")
        if not self.values:
            raise SpecError("the range is empty: values lists nothing", step=step, field=f"{field}.values")

    def grid(self, *, step: str, field: str) -> list[Any]:
        return list(self.values)

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(list(self.values))

    def resolved(self, evaluate: Callable[[Any], Any]) -> CategoricalParameter:
        return CategoricalParameter(evaluate(self.values))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "values": to_canonical(self.values)}


def _literal(value: Any) -> bool:
    return not isinstance(value, Expression)


def _check_bounds(rng: _BoundedRange, *, step: str, field: str) -> None:
    if rng.scaling_type not in SCALINGS:
        raise SpecError(
            f"scaling_type must be one of {', '.join(SCALINGS)}, got {rng.scaling_type!r}",
            step=step,
            field=f"{field}.scaling_type",
        )
    if _literal(rng.min_value) and _literal(rng.max_value) and rng.min_value > rng.max_value:
        raise SpecError(
            f"the range is empty: min_value {rng.min_value!r} is above max_value {rng.max_value!r}",
            step=step,
            field=field,
        )


RANGE_KINDS: dict[str, type[ParameterRange]] = {
    cls.kind: cls for cls in (IntegerParameter, ContinuousParameter, CategoricalParameter)
}


def trials(
    step_name: str,
    ranges: Mapping[str, ParameterRange],
    *,
    strategy: str,
    max_jobs: int | None,
    seed: int,
) -> list[dict[str, Any]]:
    """The hyperparameters of each trial: every combination (grid), or ``max_jobs`` drawn at random.

    :param ranges: the ranges, bounds already evaluated.
    """
    for name, value_range in ranges.items():
        value_range.check(step=step_name, field=f"hyperparameter_ranges.{name}")
    if strategy == "Grid":
        axes = [
            value_range.grid(step=step_name, field=f"hyperparameter_ranges.{name}")
            for name, value_range in ranges.items()
        ]
        size = math.prod(len(axis) for axis in axes)
        limit = min(max_jobs or MAX_FAN_OUT_ITEMS, MAX_FAN_OUT_ITEMS)
        if size > limit:
            raise SpecError(
                f"grid search has {size} combinations, more than "
                + (
                    f"max_jobs ({max_jobs})"
                    if max_jobs and max_jobs < MAX_FAN_OUT_ITEMS
                    else f"{MAX_FAN_OUT_ITEMS}"
                )
                + "; narrow the ranges or use strategy Random",
                step=step_name,
                field="hyperparameter_ranges",
            )
        return [dict(zip(ranges, combination, strict=True)) for combination in itertools.product(*axes)]
    rng = random.Random(seed)
    return [
        {name: value_range.sample(rng) for name, value_range in ranges.items()} for _ in range(max_jobs or 1)
    ]
