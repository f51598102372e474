"""Loops, fan-out, tuning, transform, schedule and parallelism in YAML specs, and their errors."""

from __future__ import annotations

import pytest

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model import LoopStep, TransformStep, TuningStep
from airflow_provider_mlpipe.spec import load_pipeline_text

HEAD = """
name: control
schedule: "0 3 * * *"
parallelism: {max_parallel_execution_steps: 2}
max_concurrent_executions: 3
parameters:
  - {name: Depths, type: List, default: [2, 3]}
  - {name: Target, type: Float, default: 1.0}
steps:
  - {name: Prepare, type: function, function: "m:prepare"}
"""


# A loop and a fan-out over its result (test_dag_cache.py builds them too).
LOOP_AND_FAN_OUT = """\
  - name: Retrain
    type: loop
    max_iterations: 2
    until:
      - le: [{step: Evaluate, output: result}, {param: Target}]
    steps:
      - {name: Train, type: function, function: "m:train", arguments: {rounds: {mul: [{loop: iteration}, 5]}}}
      - {name: Evaluate, type: function, function: "m:evaluate", arguments: {model: {step: Train, output: result}}}
    outputs: {model: {step: Train, output: result}}
  - name: Sweep
    type: function
    function: "m:square"
    for_each: {param: Depths}
    max_concurrency: 2
    timeout: 30
    display_name: Square each depth
    arguments: {x: {item: ""}, model: {step: Retrain, output: model, path: rounds}}
"""


def load(steps: str):
    return load_pipeline_text(HEAD.lstrip() + steps.lstrip("\n"), file="control.pipeline.yaml")


def test_loops_fan_outs_tuning_and_transform_read_from_yaml():
    pipeline = load(
        LOOP_AND_FAN_OUT
        + """
  - name: Tune
    type: tuning
    function: "m:fit"
    hyperparameter_ranges:
      max_depth: {type: Integer, min_value: 2, max_value: 3}
      eta: {type: Continuous, min_value: 0.1, max_value: 0.5, scaling_type: Logarithmic}
    strategy: Random
    max_jobs: 3
    max_parallel_jobs: 2
    objective_metric_name: mse
  - {name: Predict, type: transform, function: "m:predict", model_data: {step: Tune, output: model}, data: x.csv}
"""
    )
    assert pipeline.schedule == "0 3 * * *"
    assert pipeline.parallelism_config.max_parallel_execution_steps == 2
    assert pipeline.max_concurrent_executions == 3
    assert isinstance(pipeline.steps["Retrain"], LoopStep)
    assert "Retrain.2.until" in pipeline.steps
    sweep = pipeline.steps["Sweep"]
    assert (sweep.is_fan_out, sweep.concurrency, sweep.timeout, sweep.display_name) == (
        True,
        2,
        30,
        "Square each depth",
    )
    assert sweep.definition()["arguments"]["model"] == {
        "step": "Retrain",
        "output": "model",
        "path": "rounds",
    }
    tune = pipeline.steps["Tune"]
    assert isinstance(tune, TuningStep) and len(tune.trials()) == 3
    assert isinstance(pipeline.steps["Predict"], TransformStep)


@pytest.mark.parametrize(
    ("steps", "message", "step", "line"),
    [
        (
            """
  - name: Forever
    type: loop
    steps: [{name: Work, type: function, function: "m:f"}]
""",
            "a loop needs an exit",
            "Forever",
            10,
        ),
        (
            """
  - name: Long
    type: loop
    max_iterations: 1000
    steps: [{name: Work, type: function, function: "m:f"}]
""",
            "max_iterations is 1000, above the bound of 50",
            "Long",
            12,
        ),
        (
            """
  - name: Sweep
    type: function
    function: "m:f"
    for_each: {param: Target}
""",
            "for_each must be a list, but parameter 'Target' is Float",
            "Sweep",
            13,
        ),
        (
            """
  - name: Tune
    type: tuning
    function: "m:fit"
    objective_metric_name: mse
    hyperparameter_ranges:
      depth: {type: Integer, min_value: 4, max_value: 2}
""",
            "the range is empty: min_value 4 is above max_value 2",
            "Tune",
            15,
        ),
        (
            """
  - name: Tune
    type: tuning
    function: "m:fit"
    objective_metric_name: mse
    hyperparameter_ranges:
      kind: {type: Categorical, values: []}
""",
            "the range is empty: values lists nothing",
            "Tune",
            15,
        ),
    ],
)
def test_control_flow_errors_name_the_step_and_line(steps: str, message: str, step: str, line: int):
    with pytest.raises(SpecError, match=message) as error:
        load(steps)
    assert (error.value.file, error.value.step) == ("control.pipeline.yaml", step)
    assert error.value.line is not None and abs(error.value.line - line) <= 2, error.value


def test_a_bad_schedule_names_the_field():
    with pytest.raises(SpecError, match="not a valid cron expression") as error:
        load_pipeline_text(
            "name: p\nschedule: every day\nsteps: [{name: A, type: function, function: 'm:f'}]\n",
            file="p.yaml",
        )
    assert (error.value.field, error.value.line) == ("schedule", 2)
