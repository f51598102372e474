"""The abalone pipeline written in Python, with the classes a SageMaker Pipelines user knows.

It is the same pipeline as ``abalone.pipeline.yaml`` (same steps, same DAG shape) under the DAG id
``abalone_python``.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_mlpipe.model import (
    ConditionLessThanOrEqualTo,
    ConditionStep,
    FailStep,
    Join,
    JsonGet,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    RetryPolicy,
    TrainingStep,
)

input_data = ParameterString(name="InputData", default_value="abalone/data/abalone.csv")
train_fraction = ParameterFloat(name="TrainFraction", default_value=0.7)
max_depth = ParameterInteger(name="MaxDepth", default_value=5)
eta = ParameterFloat(name="Eta", default_value=0.2)
num_round = ParameterInteger(name="NumRound", default_value=50)
mse_threshold = ParameterFloat(name="MseThreshold", default_value=6.0)
model_approval_status = ParameterString(
    name="ModelApprovalStatus",
    default_value="PendingManualApproval",
    enum_values=["PendingManualApproval", "Approved", "Rejected"],
)

step_process = ProcessingStep(
    name="Preprocess",
    code="abalone/scripts/preprocess.py",
    inputs=[ProcessingInput(input_name="raw", source=input_data)],
    outputs=[ProcessingOutput("train"), ProcessingOutput("validation"), ProcessingOutput("test")],
    job_arguments=["--train-fraction", train_fraction],
)

step_train = TrainingStep(
    name="Train",
    code="abalone/scripts/train.py",
    hyperparameters={
        "max_depth": max_depth,
        "eta": eta,
        "num_round": num_round,
        "objective": "reg:squarederror",
    },
    inputs={"train": step_process.output("train"), "validation": step_process.output("validation")},
    retry_policy=RetryPolicy(max_attempts=2, interval_seconds=5),
)

evaluation_report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
step_eval = ProcessingStep(
    name="Evaluate",
    code="abalone/scripts/evaluate.py",
    inputs=[
        ProcessingInput(input_name="model", source=step_train.output("model")),
        ProcessingInput(input_name="test", source=step_process.output("test")),
    ],
    outputs=[ProcessingOutput("evaluation")],
    property_files=[evaluation_report],
)

mse = JsonGet(
    step_name=step_eval.name, property_file=evaluation_report, json_path="regression_metrics.mse.value"
)

step_register = RegisterModel(
    name="RegisterModel",
    model_data=step_train.output("model"),
    model_package_group_name="abalone",
    approval_status=model_approval_status,
    model_metrics=JsonGet(step_eval, evaluation_report, "regression_metrics"),
)

step_fail = FailStep(
    name="FailOnMse",
    error_message=Join(
        on=" ", values=["Execution failed: MSE", mse, "is greater than the threshold", mse_threshold]
    ),
)

step_cond = ConditionStep(
    name="CheckMse",
    conditions=[ConditionLessThanOrEqualTo(left=mse, right=mse_threshold)],
    if_steps=[step_register],
    else_steps=[step_fail],
)

pipeline = Pipeline(
    name="abalone_python",
    description="The abalone pipeline, written in Python.",
    parameters=[input_data, train_fraction, max_depth, eta, num_round, mse_threshold, model_approval_status],
    steps=[step_process, step_train, step_eval, step_cond],
    base_dir=Path(__file__).parent,
    source_file=__file__,
    tags=["example", "abalone"],
)

dag = pipeline.to_dag()
