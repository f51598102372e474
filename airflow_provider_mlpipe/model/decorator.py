"""The ``@step`` decorator, as SageMaker's function steps: decorated functions, called with each
other's results, make the pipeline.

Calling a decorated function does not run it: it returns a :class:`DelayedReturn`, a reference to the
function's return value in an execution, which other decorated calls (and conditions, and any step)
take as arguments. ``Pipeline(name=..., steps=[last_result])`` finds every step the result depends
on. A return value indexes as in SageMaker: ``result[0]``, ``result["key"]``.

Each call is a :class:`~airflow_provider_mlpipe.model.steps.FunctionStep` named after the function
(``train``, then ``train-2`` for a second call of the same function in one pipeline, or ``name=``),
with one output, ``result``. The function runs in the task process on the worker, which rebuilds the
pipeline from the DAG file; so the function must be importable there (defined at module level in the
DAG file, or in a module the worker has); a function the worker cannot import fails its step with a
message naming the step and the function.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from airflow_provider_mlpipe.exceptions import ExpressionError, SpecError
from airflow_provider_mlpipe.model.code_steps import FunctionStep
from airflow_provider_mlpipe.model.expressions import EvaluationContext, StepOutput
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import RetryPolicy

RESULT = "result"


class DelayedReturn(StepOutput):
    """The return value of a ``@step`` function in an execution, or a part of it (``result[0]``).

    :param producer: the step whose ``result`` it is.
    :param path: keys and indexes into the value.
    """

    def __init__(self, producer: Step, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(producer.name, RESULT)
        self.producer = producer
        self.keys = tuple(path)

    def __getitem__(self, key: str | int) -> DelayedReturn:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise TypeError(f"a step's result is indexed by a key or a position, got {key!r}")
        return DelayedReturn(self.producer, (*self.keys, key))

    def __iter__(self) -> Any:
        # Without this, Python would iterate through __getitem__ forever (``a, b = result``).
        raise TypeError("a step's result cannot be unpacked before it runs; index it: result[0], result[1]")

    def evaluate(self, context: EvaluationContext) -> Any:
        value = context.step_output(self.step_name, self.output_name)
        for key in self.keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(
                    f"the result of step {self.step_name!r} has no {key!r} (path {list(self.keys)!r})"
                ) from None
        return value

    def to_dict(self) -> Any:
        base = {"step": self.step_name, "output": self.output_name}
        return {**base, "keys": list(self.keys)} if self.keys else base


class StepFunction:
    """A ``@step``-decorated function: calling it adds a step and returns its :class:`DelayedReturn`.

    ``function(...)`` itself is still reachable as ``.function`` (to test it as plain Python).
    """

    def __init__(self, function: Callable[..., Any], options: dict[str, Any]) -> None:
        self.function = function
        self.options = options
        self.signature = inspect.signature(function)
        self.calls = 0
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> DelayedReturn:
        self.calls += 1
        base = self.options.get("name") or self.function.__name__
        name = base if self.calls == 1 else f"{base}-{self.calls}"
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise SpecError(
                f"cannot call {self.function.__name__}: {error}", step=name, field="arguments"
            ) from None
        arguments = dict(bound.arguments)
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL,) and parameter.name in arguments:
                raise SpecError(
                    f"*{parameter.name}: a step function takes named arguments only",
                    step=name,
                    field="arguments",
                )
            if parameter.kind == parameter.VAR_KEYWORD and parameter.name in arguments:
                arguments.update(arguments.pop(parameter.name))
        options = {key: value for key, value in self.options.items() if key != "name"}
        created = FunctionStep(name, function=self.function, arguments=arguments, **options)
        return DelayedReturn(created)


def step(
    _function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    depends_on: Sequence[Step | str] | None = None,
    allow_pickle: bool = False,
) -> Any:
    """Make a function a pipeline step (SageMaker's ``@step``): ``@step`` or ``@step(name=..., ...)``.

    :param name: the step's name (default: the function's name).
    :param allow_pickle: whether this step may load inputs stored as pickles (a result that is not
        JSON, an array or a DataFrame is stored as a pickle).
    """
    options = {
        "name": name,
        "display_name": display_name,
        "description": description,
        "retry_policy": retry_policy,
        "timeout": timeout,
        "depends_on": depends_on,
        "allow_pickle": allow_pickle,
    }

    def decorate(function: Callable[..., Any]) -> StepFunction:
        label = name or getattr(function, "__name__", repr(function))
        if not inspect.isfunction(function):
            raise SpecError(
                f"@step decorates a function, got {function!r}", step=str(label), field="function"
            )
        if function.__name__ == "<lambda>":
            raise SpecError(
                "@step cannot decorate a lambda: give the function a name", step=str(label), field="function"
            )
        return StepFunction(function, options)

    return decorate(_function) if _function is not None else decorate
