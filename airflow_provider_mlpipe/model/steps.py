"""Steps, named as in SageMaker: ``ProcessingStep``, ``TrainingStep``, ``ConditionStep``, ``FailStep``,
``RegisterModel``, plus ``FunctionStep`` for a plain Python callable.

A step declares its outputs; ``step.output("name")`` is the reference another step passes as input.
Data passes between steps through the artifact store, never through hand-written S3 code.
"""

from __future__ import annotations

from airflow_provider_mlpipe.model.code_steps import FunctionStep, ProcessingStep, TrainingStep
from airflow_provider_mlpipe.model.decision_steps import (
    APPROVAL_STATUSES,
    ConditionStep,
    FailStep,
    RegisterModel,
)
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import (
    CODE_KINDS,
    IO_NAME,
    MAX_ATTEMPTS_LIMIT,
    MAX_TIMEOUT_SECONDS,
    MAX_WAIT_SECONDS,
    PASS_ENV_NAME,
    STEP_NAME,
    ProcessingInput,
    ProcessingOutput,
    PropertyFile,
    RetryPolicy,
    check_code_files,
    check_function,
    check_pass_env,
    check_timeout,
    pass_env_definition,
)

# The step classes live in step_base, code_steps and decision_steps, their field types and checks in
# step_fields; this module keeps the table of kinds and the import path every caller has used.
__all__ = [
    "APPROVAL_STATUSES",
    "CODE_KINDS",
    "IO_NAME",
    "MAX_ATTEMPTS_LIMIT",
    "MAX_TIMEOUT_SECONDS",
    "MAX_WAIT_SECONDS",
    "PASS_ENV_NAME",
    "STEP_KINDS",
    "STEP_NAME",
    "ConditionStep",
    "FailStep",
    "FunctionStep",
    "ProcessingInput",
    "ProcessingOutput",
    "ProcessingStep",
    "PropertyFile",
    "RegisterModel",
    "RetryPolicy",
    "Step",
    "TrainingStep",
    "check_code_files",
    "check_function",
    "check_pass_env",
    "check_timeout",
    "pass_env_definition",
]

STEP_KINDS: dict[str, type[Step]] = {
    cls.kind: cls
    for cls in (FunctionStep, ProcessingStep, TrainingStep, ConditionStep, FailStep, RegisterModel)
}
