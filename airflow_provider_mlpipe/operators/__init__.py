"""Step operators: one per step kind. Imported lazily: ``from airflow_provider_mlpipe.operators import X``."""

from __future__ import annotations

import importlib
from typing import Any

_OPERATORS = {
    "MlpipeStepOperator": "base",
    "MlpipeFunctionOperator": "function",
    "MlpipeProcessingOperator": "processing",
    "MlpipeTrainingOperator": "training",
    "MlpipeConditionOperator": "condition",
    "MlpipeFailOperator": "fail",
    "MlpipeRegisterModelOperator": "register_model",
    "MlpipeLoopOperator": "loop",
    "MlpipeLoopConditionOperator": "loop",
    "MlpipeItemsOperator": "fanout",
    "MlpipeCollectOperator": "fanout",
    "MlpipeTuningOperator": "tuning",
    "MlpipeTuningTrialOperator": "tuning",
    "MlpipeTransformOperator": "transform",
}

# step kind -> operator class name
OPERATOR_FOR_KIND = {
    "function": "MlpipeFunctionOperator",
    "processing": "MlpipeProcessingOperator",
    "training": "MlpipeTrainingOperator",
    "condition": "MlpipeConditionOperator",
    "fail": "MlpipeFailOperator",
    "register_model": "MlpipeRegisterModelOperator",
    "loop": "MlpipeLoopOperator",
    # A step with for_each: its own task collects what each item's run produced.
    "fan_out": "MlpipeCollectOperator",
    "loop_condition": "MlpipeLoopConditionOperator",
    "tuning": "MlpipeTuningOperator",
    "transform": "MlpipeTransformOperator",
}
# step kind -> the operator of one item's run, for a step that runs once per item (fan-out).
ITEM_OPERATOR_FOR_KIND = {
    "function": "MlpipeFunctionOperator",
    "processing": "MlpipeProcessingOperator",
    "training": "MlpipeTrainingOperator",
    "transform": "MlpipeTransformOperator",
    "tuning": "MlpipeTuningTrialOperator",
}

__all__ = list(_OPERATORS)


def __getattr__(name: str) -> Any:
    if name in _OPERATORS:
        module = importlib.import_module(f"{__name__}.{_OPERATORS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def operator_class(kind: str) -> type:
    """The operator class that runs steps of ``kind``."""
    return __getattr__(OPERATOR_FOR_KIND[kind])


def item_operator_class(kind: str) -> Any:
    """The operator class that runs one item of a fan-out step of ``kind``."""
    return __getattr__(ITEM_OPERATOR_FOR_KIND[kind])
