"""Loops: a small sub-pipeline repeated until a condition holds or ``max_iterations`` is reached.

An Airflow DAG has no cycles, so a loop is unrolled when the pipeline is built: iteration ``i`` of
loop ``Retrain`` is a copy of each body step named ``Retrain.<i>.<step>`` (references between body
steps point into the same iteration, ``{loop: iteration}`` becomes ``i``), followed by a condition
step ``Retrain.<i>.until`` that evaluates ``until`` on that iteration's outputs. When it holds, the
iterations after it are skipped at once (they never start a task); when it does not, the next
iteration runs. The loop step itself, ``Retrain``, runs last and takes the outputs of the last
iteration that ran as its own (references, nothing is copied), so later steps read
``{step: Retrain, output: model}`` like any other output.

Every iteration is made of real steps: each shows in the Airflow UI and in ``list_steps()`` with its
own logs, outputs and status, and selective execution can select any of them. The price is a
bound: ``max_iterations`` is fixed when the DAG is built (at most ``MAX_LOOP_ITERATIONS``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import is_dataclass
from typing import Any

from airflow_provider_mlpipe.exceptions import ExpressionError, SpecError
from airflow_provider_mlpipe.model.conditions import Condition
from airflow_provider_mlpipe.model.decision_steps import ConditionStep
from airflow_provider_mlpipe.model.expressions import (
    EvaluationContext,
    Expression,
    JsonGet,
    Reference,
    StepOutput,
    to_canonical,
)
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import PropertyFile

# Each iteration is a set of Airflow tasks: the bound keeps a DAG readable and its parse fast.
MAX_LOOP_ITERATIONS = 50
# With an exit condition and no max_iterations.
DEFAULT_MAX_ITERATIONS = 10
UNTIL = "until"


def iteration_step_name(loop: str, iteration: int, step: str) -> str:
    """The name of body step ``step`` in iteration ``iteration`` (from 1) of ``loop``."""
    return f"{loop}.{iteration}.{step}"


class LoopIteration(Reference):
    """The number of the current iteration of the loop the step is in, from 1 (``{loop: iteration}``).

    Replaced by the number itself when the loop is unrolled.
    """

    def __init__(self) -> None:
        self.value: int | None = None

    def evaluate(self, context: EvaluationContext) -> Any:
        if self.value is None:
            raise ExpressionError("{loop: iteration} is only defined inside a loop's steps")
        return self.value

    def to_dict(self) -> Any:
        return {"loop": "iteration"} if self.value is None else {"loop": "iteration", "value": self.value}


class LoopCondition(ConditionStep):
    """The exit test after one iteration: ``if`` (the conditions hold) ends the loop, ``else`` runs the
    next iteration. Its operator skips every later iteration when the loop ends.

    :param loop: the loop step's name.
    :param iteration: the iteration it closes.
    """

    operator_kind = "loop_condition"

    def __init__(self, name: str, *, loop: str, iteration: int, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.loop = loop
        self.iteration = iteration
        self.later_steps: list[str] = []


class LoopStep(Step):
    """Repeats ``steps`` until ``until`` holds (checked after each iteration) or ``max_iterations`` ran.

    :param steps: the body: steps that refer to each other by name, and to steps outside the loop.
    :param until: conditions (all must hold) that end the loop, read after each iteration; they may
        read the iteration's steps (``JsonGet`` of its evaluation...).
    :param max_iterations: the most iterations (default 10 with ``until``; required without it).
    :param outputs: the loop's outputs: name to an output of a body step, e.g.
        ``{"model": train.output("model")}``; they take the last iteration's values.
    """

    kind = "loop"

    def __init__(
        self,
        name: str,
        steps: Sequence[Step],
        until: Sequence[Condition] | None = None,
        max_iterations: int | None = None,
        outputs: Mapping[str, StepOutput] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.body = list(steps or [])
        self.until = list(until or [])
        self.max_iterations = _checked_iterations(name, max_iterations, bool(self.until))
        self.outputs = dict(outputs or {})
        self._check_body()
        self.unrolled: list[Step] = []

    # -- checks -----------------------------------------------------------------------------
    def _check_body(self) -> None:
        if not self.body:
            raise SpecError("a loop needs at least one step in 'steps'", step=self.name, field="steps")
        names: set[str] = set()
        for step in self.body:
            if not isinstance(step, Step):
                raise SpecError(f"expected a step, got {step!r}", step=self.name, field="steps")
            if isinstance(step, LoopStep):
                raise SpecError(
                    f"step {step.name!r}: a loop inside a loop is not supported; unroll the inner one "
                    "by hand or make it a fan-out",
                    step=self.name,
                    field="steps",
                )
            if step.name in names:
                raise SpecError(
                    f"duplicate step name {step.name!r} in the loop", step=self.name, field="steps"
                )
            names.add(step.name)
        for condition in self.until:
            if not isinstance(condition, Condition):
                raise SpecError(f"expected a condition, got {condition!r}", step=self.name, field=UNTIL)
        body = {step.name: step for step in self.body}
        for output, reference in self.outputs.items():
            if not isinstance(reference, StepOutput) or reference.step_name not in body:
                raise SpecError(
                    f"output {output!r} must be an output of a step of the loop "
                    f"({', '.join(body)}), got {to_canonical(reference)!r}",
                    step=self.name,
                    field=f"outputs.{output}",
                )
            if reference.output_name not in body[reference.step_name].output_names():
                raise SpecError(
                    f"output {output!r}: step {reference.step_name!r} has no output {reference.output_name!r}",
                    step=self.name,
                    field=f"outputs.{output}",
                )

    # -- the graph ------------------------------------------------------------------------------
    def output_names(self) -> list[str]:
        return list(self.outputs)

    def property_files(self) -> list[PropertyFile]:
        """The body's property files that are in an output of the loop, under the loop's output name."""
        body = {step.name: step for step in self.body}
        files = []
        for output, reference in self.outputs.items():
            for item in body[reference.step_name].property_files():
                if item.output_name == reference.output_name:
                    files.append(PropertyFile(item.name, output, item.path))
        return files

    def related_steps(self) -> Iterator[Step]:
        """Steps outside the loop that the body names as objects (the body itself is unrolled)."""
        yield from super().related_steps()
        body = {id(step) for step in self.body}
        for step in self.body:
            for other in step.related_steps():
                if id(other) not in body:
                    yield other

    def body_step(self, name: str) -> Step:
        return next(step for step in self.body if step.name == name)

    def iteration_names(self, iteration: int) -> list[str]:
        return [iteration_step_name(self.name, iteration, step.name) for step in self.body]

    def check_name(self, iteration: int) -> str:
        return iteration_step_name(self.name, iteration, UNTIL)

    def unroll(self) -> list[Step]:
        """The steps of every iteration (and their exit tests); sets this step's ``depends_on`` to
        what ends the loop. Called once, by the pipeline."""
        if self.unrolled:
            return self.unrolled
        others = {id(step): step for step in self.body}
        steps: list[Step] = []
        checks: list[LoopCondition] = []
        previous: list[str] = []
        for iteration in range(1, self.max_iterations + 1):
            renames = {step.name: iteration_step_name(self.name, iteration, step.name) for step in self.body}
            clones = [_clone(step, renames, iteration, others) for step in self.body]
            for clone in clones:
                clone.depends_on = sorted({*clone.depends_on, *previous})
                clone.loop_gate = checks[-1].name if checks else None
                label = self.body_step(_body_name(clone.name)).display_name or _body_name(clone.name)
                clone.display_name = f"{label} #{iteration}"
            steps.extend(clones)
            if not self.until:
                previous = [clone.name for clone in clones]
                continue
            check = LoopCondition(
                self.check_name(iteration),
                conditions=[_rewritten(condition, renames, iteration) for condition in self.until],
                loop=self.name,
                iteration=iteration,
                depends_on=[clone.name for clone in clones],
                display_name=f"{self.name} until #{iteration}",
            )
            if checks:
                inner = {
                    name
                    for clone in clones
                    if isinstance(clone, ConditionStep)
                    for name in clone.if_steps + clone.else_steps
                }
                checks[-1].else_steps = [clone.name for clone in clones if clone.name not in inner] + [
                    check.name
                ]
            checks.append(check)
            steps.append(check)
            previous = [check.name]
        for check in checks:
            check.later_steps = [step.name for step in steps[steps.index(check) + 1 :]]
        self.depends_on = sorted({*self.depends_on, *([check.name for check in checks] or previous)})
        self.unrolled = steps
        return steps

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "steps": [step.definition() for step in self.body],
            "until": [condition.to_dict() for condition in self.until],
            "max_iterations": self.max_iterations,
            "outputs": to_canonical(self.outputs),
        }


def _checked_iterations(name: str, max_iterations: Any, has_until: bool) -> int:
    if max_iterations is None:
        if not has_until:
            raise SpecError(
                "a loop needs an exit: give 'until' (conditions that end it), 'max_iterations', or both",
                step=name,
                field="max_iterations",
            )
        return DEFAULT_MAX_ITERATIONS
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise SpecError(
            f"max_iterations must be an integer >= 1, got {max_iterations!r}",
            step=name,
            field="max_iterations",
        )
    if max_iterations > MAX_LOOP_ITERATIONS:
        raise SpecError(
            f"max_iterations is {max_iterations}, above the bound of {MAX_LOOP_ITERATIONS} (each iteration "
            "is unrolled into Airflow tasks when the DAG is built)",
            step=name,
            field="max_iterations",
        )
    return max_iterations


def _body_name(unrolled: str) -> str:
    return unrolled.split(".", 2)[2]


def _clone(step: Step, renames: Mapping[str, str], iteration: int, others: Mapping[int, Step]) -> Step:
    """A copy of body step ``step`` for one iteration: renamed, its references into the body renamed."""
    # Other steps a step names as objects stay themselves; only their names matter in the copy.
    memo: dict[int, Any] = {key: value for key, value in others.items() if value is not step}
    clone = copy.deepcopy(step, memo)
    _rewrite(clone.__dict__, renames, iteration, set())
    clone.name = renames[step.name]
    clone.depends_on = [renames.get(name, name) for name in clone.depends_on]
    clone._depends_on_steps = []
    if isinstance(clone, ConditionStep):
        clone.if_steps = [renames.get(name, name) for name in clone.if_steps]
        clone.else_steps = [renames.get(name, name) for name in clone.else_steps]
        clone._if_steps, clone._else_steps = [], []
    return clone


def _rewritten(condition: Condition, renames: Mapping[str, str], iteration: int) -> Condition:
    clone = copy.deepcopy(condition)
    _rewrite(clone, renames, iteration, set())
    return clone


def _rewrite(value: Any, renames: Mapping[str, str], iteration: int, seen: set[int]) -> None:
    """Point the references inside ``value`` (a copy) at iteration ``iteration``."""
    if id(value) in seen or isinstance(value, (str, int, float, bool, type(None), Step)):
        return
    seen.add(id(value))
    if isinstance(value, (StepOutput, JsonGet)) and value.step_name in renames:
        value.step_name = renames[value.step_name]
    if isinstance(value, LoopIteration):
        value.value = iteration
    if isinstance(value, Mapping):
        for item in value.values():
            _rewrite(item, renames, iteration, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _rewrite(item, renames, iteration, seen)
    elif isinstance(value, (Expression, Condition)) or is_dataclass(value):
        _rewrite(vars(value), renames, iteration, seen)
