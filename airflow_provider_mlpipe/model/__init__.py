"""The pipeline model: parameters, expressions, conditions, steps and the pipeline graph.

Pure Python, no Airflow import, so specs load and validate fast.
"""

from __future__ import annotations

from airflow_provider_mlpipe.model.cache import CacheConfig
from airflow_provider_mlpipe.model.conditions import (
    Condition,
    ConditionAnd,
    ConditionEquals,
    ConditionGreaterThan,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionNot,
    ConditionNotEquals,
    ConditionOr,
)
from airflow_provider_mlpipe.model.expressions import (
    BinaryOperation,
    EvaluationContext,
    ExecutionVariable,
    ExecutionVariables,
    Expression,
    Join,
    JsonGet,
    StepOutput,
)
from airflow_provider_mlpipe.model.parameters import (
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.model.steps import (
    ConditionStep,
    FailStep,
    FunctionStep,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    RetryPolicy,
    Step,
    TrainingStep,
)

__all__ = [
    "BinaryOperation",
    "CacheConfig",
    "Condition",
    "ConditionAnd",
    "ConditionEquals",
    "ConditionGreaterThan",
    "ConditionGreaterThanOrEqualTo",
    "ConditionIn",
    "ConditionLessThan",
    "ConditionLessThanOrEqualTo",
    "ConditionNot",
    "ConditionNotEquals",
    "ConditionOr",
    "ConditionStep",
    "EvaluationContext",
    "ExecutionVariable",
    "ExecutionVariables",
    "Expression",
    "FailStep",
    "FunctionStep",
    "Join",
    "JsonGet",
    "Parameter",
    "ParameterBoolean",
    "ParameterFloat",
    "ParameterInteger",
    "ParameterString",
    "Pipeline",
    "ProcessingInput",
    "ProcessingOutput",
    "ProcessingStep",
    "PropertyFile",
    "RegisterModel",
    "RetryPolicy",
    "Step",
    "StepOutput",
    "TrainingStep",
]
