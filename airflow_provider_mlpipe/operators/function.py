"""Function step: call a Python callable with resolved arguments; its return value becomes outputs."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.steps import FunctionStep
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime


def import_callable(
    reference: Callable[..., Any] | str, *, base_dir: Path | None = None
) -> Callable[..., Any]:
    """Return the callable named ``"package.module:attr"`` or ``"file.py:attr"`` (relative to ``base_dir``).

    :param reference: a callable (returned as is) or its name.
    :param base_dir: the pipeline's folder, for ``file.py:attr``.
    """
    if callable(reference):
        return reference
    module_name, _, attribute = reference.partition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            unique = "mlpipe_user_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
            module = sys.modules.get(unique)
            if module is None:
                spec = importlib.util.spec_from_file_location(unique, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[unique] = module
        else:
            module = importlib.import_module(module_name)
        target: Any = module
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, OSError) as error:
        raise StepExecutionError(f"cannot import function {reference!r}: {error}") from None
    if not callable(target):
        raise StepExecutionError(f"{reference!r} is not callable")
    return target


def split_outputs(step_name: str, names: list[str], result: Any) -> dict[str, Any]:
    """Map a callable's return value to the declared output names."""
    if len(names) == 1:
        return {names[0]: result}
    if isinstance(result, Mapping) and set(names) <= set(result):
        return {name: result[name] for name in names}
    if isinstance(result, (tuple, list)) and len(result) == len(names):
        return dict(zip(names, result, strict=True))
    raise StepExecutionError(
        f"step {step_name!r} declares outputs {names} but its function returned {type(result).__name__}; "
        f"return a tuple of {len(names)} values or a dict with those keys"
    )


class MlpipeFunctionOperator(MlpipeStepOperator):
    """Runs a :class:`~airflow_provider_mlpipe.model.steps.FunctionStep`."""

    step_kind = "function"

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        step = self.step
        assert isinstance(step, FunctionStep)
        try:
            function = import_callable(step.function, base_dir=step.base_dir)
        except StepExecutionError as error:
            raise StepExecutionError(f"step {step.name!r}: {error}") from None
        arguments = runtime.evaluate(step.arguments)
        result = function(**arguments)
        return split_outputs(step.name, step.output_names(), result), {}
