"""What a pipeline's DAG tells selective runs about its steps, read back from Airflow's serialized DAG.

The api-server and the scheduler only see the serialized DAG, so these tests go through Airflow's own
serializer. Airflow truncates template fields longer than ``[core] max_templated_field_length``
(4096 by default): nothing that grows with the pipeline may travel in one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.model import (
    ConditionEquals,
    ConditionStep,
    FunctionStep,
    ParameterInteger,
    Pipeline,
)
from airflow_provider_mlpipe.selective.manifest import (
    OUTCOME_TASK_ID,
    edge_label,
    parse_edge_label,
    step_infos_from_dag,
)


@contextmanager
def max_templated_field_length(length: int) -> Iterator[None]:
    from airflow.configuration import conf

    section, key = "core", "max_templated_field_length"
    had = conf.has_option(section, key)
    previous = conf.get(section, key) if had else None
    conf.set(section, key, str(length))
    try:
        yield
    finally:
        if previous is not None:
            conf.set(section, key, previous)
        else:
            conf.remove_option(section, key)


def serialized(dag):
    """The DAG as the api-server and the scheduler hold it."""
    from airflow.serialization.serialized_objects import DagSerialization

    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def wide_condition_pipeline(branch_size: int) -> Pipeline:
    """A condition with ``branch_size`` steps in each branch, names of 150 characters."""
    flag = ParameterInteger("Flag", default_value=1)
    source = FunctionStep("Source", function="json:dumps", arguments={"obj": flag})

    def branch(prefix: str) -> list[FunctionStep]:
        return [
            FunctionStep(
                f"{prefix}_{index:04d}_".ljust(150, "x"),
                function="json:loads",
                arguments={"s": source.output("result")},
            )
            for index in range(branch_size)
        ]

    gate = ConditionStep(
        "Gate", conditions=[ConditionEquals(flag, 1)], if_steps=branch("if"), else_steps=branch("else")
    )
    return Pipeline("wide_condition", [flag], [source, gate])


def test_edge_labels_round_trip():
    assert edge_label(None, []) is None
    assert edge_label(None, ["validation", "train", "train"]) == "train, validation"
    assert edge_label("if", []) == "if branch"
    assert edge_label("else", ["outcome"]) == "else branch: outcome"
    for branch, data in ((None, ["train", "validation"]), ("if", []), ("else", ["outcome"]), (None, ["if"])):
        assert parse_edge_label(edge_label(branch, data)) == (branch, sorted(data))
    assert parse_edge_label(None) == (None, [])


def test_a_large_condition_step_is_planned_from_the_serialized_dag():
    pipeline = wide_condition_pipeline(branch_size=40)  # 80 branch names: ~12,000 characters
    dag = pipeline.to_dag()

    steps = step_infos_from_dag(serialized(dag))

    assert OUTCOME_TASK_ID not in steps
    gate = steps["Gate"]
    assert gate.kind == "condition"
    assert len(gate.if_steps) == 40 and len(gate.else_steps) == 40
    assert sum(len(name) for name in gate.if_steps + gate.else_steps) > 4096
    assert set(gate.if_steps) == {name for name in pipeline.steps if name.startswith("if_")}
    assert set(gate.else_steps) == {name for name in pipeline.steps if name.startswith("else_")}
    assert gate.data_upstream == frozenset()  # the condition reads a parameter, not a step's data
    for name, step in pipeline.steps.items():
        assert steps[name].digest == step.digest()
    first_if = gate.if_steps[0]
    assert steps[first_if].upstream == {"Gate", "Source"}
    assert steps[first_if].data_upstream == {"Source"}


@pytest.mark.parametrize("limit", [4096, 200])
def test_the_manifest_survives_airflow_truncating_template_fields(limit: int):
    # At the default limit, and at a deployment's much lower one, every step is still known.
    with max_templated_field_length(limit):
        dag = wide_condition_pipeline(branch_size=40).to_dag()
        steps = step_infos_from_dag(serialized(dag))
    assert len(steps) == 82
    assert len(steps["Gate"].if_steps) == 40


def test_a_truncated_manifest_is_a_clear_error_not_a_foreign_dag():
    with max_templated_field_length(40):
        dag = wide_condition_pipeline(branch_size=1).to_dag()
        with pytest.raises(SelectiveExecutionError, match="max_templated_field_length"):
            step_infos_from_dag(serialized(dag))


def test_a_dag_that_is_not_a_pipeline_is_named():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("plain", schedule=None) as dag:
        EmptyOperator(task_id="nothing")
    with pytest.raises(SelectiveExecutionError, match="'plain' is not an mlpipe pipeline"):
        step_infos_from_dag(serialized(dag))
