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
from airflow_provider_mlpipe.model.decorator import DelayedReturn, step
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
from airflow_provider_mlpipe.model.fanout import ForEachItem
from airflow_provider_mlpipe.model.loops import LoopIteration, LoopStep
from airflow_provider_mlpipe.model.parameters import (
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterList,
    ParameterString,
)
from airflow_provider_mlpipe.model.pipeline import ParallelismConfiguration, Pipeline
from airflow_provider_mlpipe.model.steps import STEP_KINDS as _STEP_KINDS
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
from airflow_provider_mlpipe.model.transform import TransformStep
from airflow_provider_mlpipe.model.tuning import HyperparameterTuner, TuningStep
from airflow_provider_mlpipe.model.tuning_ranges import (
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
)

# The step kinds defined outside model.steps (they build on its classes), registered here so that the
# spec reader finds every kind in one table.
_STEP_KINDS.update({cls.kind: cls for cls in (LoopStep, TuningStep, TransformStep)})

__all__ = [
    "BinaryOperation",
    "CategoricalParameter",
    "ContinuousParameter",
    "DelayedReturn",
    "ForEachItem",
    "HyperparameterTuner",
    "IntegerParameter",
    "LoopIteration",
    "LoopStep",
    "ParallelismConfiguration",
    "ParameterList",
    "TransformStep",
    "TuningStep",
    "step",
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
