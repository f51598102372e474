"""What the "Selective run" view reads of a run (``plugins/run_graph.py``), on real runs in the test DB.

The runs are made in process by the local runner, on a factory-built DAG that also has an internal
task (``_pipeline_outcome``, as the factory adds for the provider's bookkeeping), which is never a
step:

    Load(Rows) -> Transform(Scale) -> Total -> Check(Total >= Threshold) -> Big | Small
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mlpipe import SelectiveExecutionConfig
from airflow_provider_mlpipe.dagruns import FAILURE_KEY
from airflow_provider_mlpipe.model import (
    ConditionGreaterThanOrEqualTo,
    ConditionStep,
    FunctionStep,
    ParameterInteger,
    Pipeline,
)
from airflow_provider_mlpipe.plugins.run_graph import not_a_pipeline_reason, step_fate
from tests.client import pipeline_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")

STEPS = ["Load", "Transform", "Total", "Check", "Big", "Small"]
INTERNAL = "_pipeline_outcome"


def pipeline_dag(name: str) -> Any:

    from airflow_provider_mlpipe.factory import build_dag

    rows = ParameterInteger("Rows", default_value=3, description="how many numbers")
    scale = ParameterInteger("Scale", default_value=2)
    threshold = ParameterInteger("Threshold", default_value=5)
    load = FunctionStep("Load", function=fns.load, arguments={"rows": rows})
    transform = FunctionStep(
        "Transform", function=fns.transform, arguments={"values": load.output("result"), "scale": scale}
    )
    total = FunctionStep("Total", function=fns.total, arguments={"values": transform.output("result")})
    big = FunctionStep("Big", function=fns.label, arguments={"value": total.output("result"), "size": "big"})
    small = FunctionStep(
        "Small", function=fns.label, arguments={"value": total.output("result"), "size": "small"}
    )
    check = ConditionStep(
        "Check",
        conditions=[ConditionGreaterThanOrEqualTo(total.output("result"), threshold)],
        if_steps=[big],
        else_steps=[small],
    )
    dag = build_dag(Pipeline(name, [rows, scale, threshold], [load, transform, total, check]))
    assert INTERNAL in dag.task_dict, "the factory ends every pipeline with its internal outcome task"
    return dag


def run_in_process(dag: Any, *, conf: dict[str, Any] | None = None, prepare: Any = None) -> str:
    from airflow_provider_mlpipe.local_runner import create_run, drive_run

    run_id = create_run(dag, conf=conf or {}, prepare=prepare)
    drive_run(dag, run_id)
    return run_id


def graph_of(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mlpipe.plugins.run_graph import run_graph

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        assert not_a_pipeline_reason(dag) is None
        return run_graph(dag, run, session=session)


def by_name(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in graph["steps"]}


@pytest.fixture(scope="module")
def full_run() -> tuple[Any, str]:
    dag = pipeline_dag("view_graph")
    return dag, run_in_process(dag, conf={"Scale": 2})


def test_a_full_run_shows_every_step_with_its_state_and_the_branches(full_run: tuple[Any, str]):
    dag, run_id = full_run
    graph = graph_of(dag.dag_id, run_id)
    steps = by_name(graph)
    assert list(steps) == STEPS, "the internal task is not a step"
    assert all(INTERNAL not in step["upstream"] for step in graph["steps"])
    assert graph["run"] == {
        "run_id": run_id,
        "state": "success",
        "note": None,
        "finished": True,
        "selective": None,
    }
    assert {name: (step["state"], step["fate"]) for name, step in steps.items()} == {
        "Load": ("success", "ran"),
        "Transform": ("success", "ran"),
        "Total": ("success", "ran"),
        "Check": ("success", "ran"),
        "Big": ("success", "ran"),
        "Small": ("skipped", "not_run"),  # 0 + 2 + 4 >= 5: the else branch was not taken
    }
    assert steps["Load"]["try_number"] == 1 and steps["Small"]["try_number"] == 0
    assert steps["Check"]["outcome"] is True and steps["Check"]["kind"] == "condition"
    assert steps["Load"]["source_run_id"] is None and steps["Load"]["failure_reason"] is None
    edges = {(edge["from"], edge["to"]): edge["label"] for edge in graph["edges"]}
    assert edges[("Check", "Big")] == "true" and edges[("Check", "Small")] == "false"
    assert edges[("Load", "Transform")] is None
    assert all(INTERNAL not in edge for edge in edges)
    assert graph["params"]["Rows"] == {
        "schema": {"type": "integer"},
        "description": "how many numbers",
        "default": 3,
        "has_run_value": False,
        "run_value": None,
    }
    assert graph["params"]["Scale"]["has_run_value"] and graph["params"]["Scale"]["run_value"] == 2


def test_a_selective_run_shows_reused_and_not_run_steps_with_their_source(full_run: tuple[Any, str]):
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.selective.runs import apply_plan, plan_for_dag

    dag, reference = full_run
    with create_session() as session:
        plan = plan_for_dag(
            dag, SelectiveExecutionConfig(["Transform", "Total"], reference), {"Scale": 3}, session=session
        )
    assert INTERNAL not in plan.not_run, "the internal task is left to run as in any run"
    run_id = run_in_process(
        dag, conf=plan.conf(), prepare=lambda run, session: apply_plan(plan, run, session=session)
    )

    graph = graph_of(dag.dag_id, run_id)
    steps = by_name(graph)
    assert {name: step["fate"] for name, step in steps.items()} == {
        "Load": "reused",
        "Transform": "ran",
        "Total": "ran",
        "Check": "not_run",
        "Big": "not_run",
        "Small": "not_run",
    }
    assert steps["Load"]["source_run_id"] == reference and steps["Load"]["origin_run_id"] == reference
    assert steps["Load"]["try_number"] == 0 and steps["Load"]["note"] == f"reused from run {reference}"
    assert steps["Check"]["note"] == "not selected: downstream of the selected steps"
    assert graph["run"]["selective"]["selected_steps"] == ["Transform", "Total"]
    assert graph["run"]["selective"]["reused_steps"] == ["Load"]


def test_a_recorded_failure_reason_is_shown_and_its_absence_tolerated(full_run: tuple[Any, str]):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag, run_id = full_run
    with create_session() as session:
        XComModel.set(
            key=FAILURE_KEY,
            value={"reason": "scale must not be negative"},
            dag_id=dag.dag_id,
            task_id="Transform",
            run_id=run_id,
            serialize=False,
            session=session,
        )
        XComModel.set(
            key=FAILURE_KEY,
            value="not a dict",
            dag_id=dag.dag_id,
            task_id="Total",
            run_id=run_id,
            serialize=False,
            session=session,
        )
    steps = by_name(graph_of(dag.dag_id, run_id))
    assert steps["Transform"]["failure_reason"] == "scale must not be negative"
    assert steps["Total"]["failure_reason"] is None and steps["Load"]["failure_reason"] is None


def test_a_dag_without_the_mlpipe_tag_is_not_a_pipeline():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("plain_for_view", schedule=None, tags=["other"]) as plain:
        EmptyOperator(task_id="nothing")
    assert (
        not_a_pipeline_reason(plain)
        == "DAG 'plain_for_view' is not an mlpipe pipeline (it has no 'mlpipe' tag)"
    )
    with DAG("tagged_but_no_steps", schedule=None, tags=["mlpipe"]) as tagged:
        EmptyOperator(task_id="nothing")
    assert "task 'nothing' is not a step" in (not_a_pipeline_reason(tagged) or "")


@pytest.mark.parametrize(
    ("state", "note", "reused", "fate"),
    [
        ("success", None, False, "ran"),
        ("failed", None, False, "ran"),
        ("up_for_retry", None, False, "ran"),
        ("success", "reused from run r1", False, "reused"),
        ("success", None, True, "reused"),
        ("skipped", "reused from run r1 (skipped there)", False, "reused_skipped"),
        ("skipped", "not selected: downstream of the selected steps", False, "not_run"),
        ("upstream_failed", None, False, "not_run"),
        (None, None, False, "pending"),
        ("queued", None, False, "pending"),
    ],
)
def test_step_fate(state: str | None, note: str | None, reused: bool, fate: str):
    assert step_fate(state, note, reused) == fate
