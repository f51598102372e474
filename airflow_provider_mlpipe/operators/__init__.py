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
}

# step kind -> operator class name
OPERATOR_FOR_KIND = {
    "function": "MlpipeFunctionOperator",
    "processing": "MlpipeProcessingOperator",
    "training": "MlpipeTrainingOperator",
    "condition": "MlpipeConditionOperator",
    "fail": "MlpipeFailOperator",
    "register_model": "MlpipeRegisterModelOperator",
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
