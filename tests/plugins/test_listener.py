"""The scheduler listener refuses unknown parameters and applies a plain trigger's selective block
all or nothing.

The listener runs in the scheduler's own transaction; here it is called the same way, on a real run in
the test's SQLite DB (the run created as ``airflow dags trigger --conf`` creates it, with every task
still to do), so what it leaves behind is what the scheduler would commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.model import FunctionStep, ParameterInteger, Pipeline
from airflow_provider_mlpipe.plugins.listener import on_dag_run_running
from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID
from airflow_provider_mlpipe.selective.model import FINGERPRINTS_XCOM_KEY
from airflow_provider_mlpipe.selective.plan import CONF_KEY
from tests.client import pipeline_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")


def small_pipeline(name: str) -> Pipeline:
    rows = ParameterInteger("Rows", default_value=3)
    scale = ParameterInteger("Scale", default_value=2)
    load = FunctionStep("Load", function=fns.load, arguments={"rows": rows})
    transform = FunctionStep(
        "Transform", function=fns.transform, arguments={"values": load.output("result"), "scale": scale}
    )
    total = FunctionStep("Total", function=fns.total, arguments={"values": transform.output("result")})
    return Pipeline(name, [rows, scale], [load, transform, total])


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> Pipeline:
    return small_pipeline("listener_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:100])


def triggered_run(pipeline: Pipeline, conf: dict[str, Any]) -> str:
    """A run with a plain conf block, as a plain trigger creates it (nothing recorded yet)."""
    from airflow_provider_mlpipe.local_runner import create_run

    return create_run(pipeline.to_dag(), conf=conf)


@contextmanager
def starting_run(pipeline: Pipeline, run_id: str) -> Iterator[Any]:
    """The run as the scheduler holds it when it starts the run (no commit but the scheduler's own);
    what the block leaves in the session is committed at its end."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit
    from sqlalchemy import select

    with create_session() as session, prohibit_commit(session) as guard:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == pipeline.name, DagRun.run_id == run_id))
        run.dag = DBDagBag().get_dag_for_run(run, session=session)
        run.state = "running"
        yield run
        guard.commit()


def listen(pipeline: Pipeline, run_id: str) -> bool:
    """Call the listener as the scheduler does when it starts the run; commit what it left."""
    with starting_run(pipeline, run_id) as run:
        on_dag_run_running(run, msg="")
    block = run_state(pipeline, run_id)["conf"].get(CONF_KEY)
    return isinstance(block, dict) and "reused_steps" in block


def run_state(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == pipeline.name, DagRun.run_id == run_id))
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == pipeline.name, TaskInstance.run_id == run_id)
        )
        xcoms = list(
            session.execute(
                select(XComModel.task_id, XComModel.key).where(
                    XComModel.dag_id == pipeline.name, XComModel.run_id == run_id
                )
            )
        )
        return {
            "state": str(run.state),
            "note": run.note,
            "conf": dict(run.conf),
            "tasks": {ti.task_id: (ti.state and str(ti.state), ti.note) for ti in tis},
            "xcoms": sorted(task_id for task_id, key in xcoms if key == "return_value"),
            "other_xcoms": sorted((task_id, key) for task_id, key in xcoms if key != "return_value"),
        }


def test_a_valid_block_records_the_reused_steps(pipeline: Pipeline):
    reference = pipeline.start(session=LocalSession())
    block = {"selected_steps": ["Transform"], "source_run_id": reference.execution_id}
    run_id = triggered_run(pipeline, {CONF_KEY: block, "Scale": 5})

    assert listen(pipeline, run_id) is True

    after = run_state(pipeline, run_id)
    assert after["tasks"]["Load"] == ("success", f"reused from run {reference.execution_id}")
    assert after["tasks"]["Total"][0] == "skipped"
    assert after["tasks"]["Transform"] == (None, None)
    assert after["xcoms"] == ["Load"]
    # What Load was computed from, for Transform to check when it starts: in one XCom of the
    # outcome task, not in the run's conf.
    assert after["other_xcoms"] == [(OUTCOME_TASK_ID, FINGERPRINTS_XCOM_KEY)]
    assert after["conf"][CONF_KEY]["reused_steps"] == ["Load"]
    assert "reused_fingerprints" not in after["conf"][CONF_KEY]
    assert after["conf"]["Scale"] == 5


def test_task_instances_the_scheduler_already_holds_see_what_was_recorded(pipeline: Pipeline):
    """The scheduler may hold the run's task instances in its session when the listener records the
    reused steps (by statements, not through those objects): the objects must not stay stale, or the
    scheduler would go on to run a reused step."""
    from sqlalchemy.orm import object_session

    reference = pipeline.start(session=LocalSession())
    block = {"selected_steps": ["Transform"], "source_run_id": reference.execution_id}
    run_id = triggered_run(pipeline, {CONF_KEY: block})

    with starting_run(pipeline, run_id) as run:
        held = {ti.task_id: ti for ti in run.get_task_instances(session=object_session(run))}
        assert {ti.state for ti in held.values()} == {None}

        on_dag_run_running(run, msg="")

        assert (held["Load"].state, held["Transform"].state, held["Total"].state) == (
            "success",
            None,
            "skipped",
        )
    after = run_state(pipeline, run_id)
    assert after["tasks"]["Load"] == ("success", f"reused from run {reference.execution_id}")


def test_a_refused_block_fails_the_run_with_the_reason_and_records_nothing(pipeline: Pipeline):
    pipeline.start(session=LocalSession())
    run_id = triggered_run(pipeline, {CONF_KEY: {"selected_steps": ["Trnasform"]}})

    assert listen(pipeline, run_id) is False

    after = run_state(pipeline, run_id)
    assert after["state"] == "failed"
    assert after["note"].startswith("Selective execution refused: ")
    assert "has no step(s) Trnasform" in after["note"]
    assert all(state is None for state, _ in after["tasks"].values())
    assert after["xcoms"] == after["other_xcoms"] == []


def test_any_error_half_way_leaves_nothing_applied(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch):
    import airflow_provider_mlpipe.selective.xcom_rows as xcom_rows

    reference = pipeline.start(session=LocalSession())
    block = {"selected_steps": ["Transform"], "source_run_id": reference.execution_id}
    run_id = triggered_run(pipeline, {CONF_KEY: block})
    before = run_state(pipeline, run_id)

    # A fault after the reused step and its XCom were written, and not one of the provider's own
    # errors: the savepoint must take back what was written.
    add_xcoms = xcom_rows.add_xcoms

    def fault(run: Any, key: str, values: Any, *, session: Any, **options: Any) -> None:
        add_xcoms(run, key, values, session=session, **options)
        session.flush()
        if key != "return_value":
            raise RuntimeError("the disk is full")

    monkeypatch.setattr(xcom_rows, "add_xcoms", fault)
    assert listen(pipeline, run_id) is False

    after = run_state(pipeline, run_id)
    assert after["state"] == "failed"
    assert after["note"] == "Selective execution refused: RuntimeError: the disk is full"
    assert after["tasks"] == before["tasks"]
    assert after["xcoms"] == after["other_xcoms"] == []
    assert after["conf"] == before["conf"]
    assert "reused_steps" not in after["conf"][CONF_KEY]


def test_a_misspelt_parameter_is_refused_not_run_with_the_default(pipeline: Pipeline):
    run_id = triggered_run(pipeline, {"Sclae": 5, "Rows": 2})

    assert listen(pipeline, run_id) is False

    after = run_state(pipeline, run_id)
    assert after["state"] == "failed"
    assert after["note"] == (
        "Run refused: unknown parameter(s) Sclae (did you mean Scale?); the pipeline has: Rows, Scale"
    )
    assert all(state is None for state, _ in after["tasks"].values())


def test_a_plain_run_with_known_parameters_is_left_alone(pipeline: Pipeline):
    run_id = triggered_run(pipeline, {"Scale": 5})
    listen(pipeline, run_id)
    after = run_state(pipeline, run_id)
    assert after["state"] == "running" and after["note"] is None
