"""Selective execution asks the fingerprint too: a reused step whose input file or imported helper
changed since the reference run is refused before any run is created, naming the step and the file;
and when the serialized DAG has not seen the change yet, the selected step that would read the stale
outputs refuses to run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from tests.project import make_project, runs

pytestmark = pytest.mark.usefixtures("airflow_home")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    # No cache: every step that runs here runs for real.
    return make_project(tmp_path / "project", f"reuse_{uuid.uuid4().hex[:8]}", cache="{enabled: false}")


def start(spec: Path, **options) -> str:
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.model import Pipeline

    return Pipeline.from_yaml(spec).start(session=LocalSession(), **options).execution_id


def select_train():
    from airflow_provider_mlpipe.selective.plan import SelectiveExecutionConfig

    return SelectiveExecutionConfig(["Train", "Register"])


def test_a_changed_input_file_of_a_reused_step_is_refused_naming_it(project: Path):
    start(project)
    (project.parent / "data" / "raw.csv").write_text("x,y\n7,8\n")

    with pytest.raises(SelectiveExecutionError) as refused:
        start(project, selective_execution_config=select_train())

    assert "Prep (input file data/raw.csv (inputs.raw) changed since that run)" in str(refused.value)
    assert runs(project.parent, "prep") == 1 and runs(project.parent, "train") == 1


def test_a_changed_helper_module_of_a_reused_step_is_refused_naming_it(project: Path):
    start(project)
    (project.parent / "scripts" / "helpers.py").write_text("def clean(value):\n    return value\n")

    with pytest.raises(SelectiveExecutionError) as refused:
        start(project, selective_execution_config=select_train())

    assert "Prep (its code changed since that run: code file helpers.py changed)" in str(refused.value)


def test_an_unchanged_step_is_still_reused(project: Path):
    reference = start(project)
    start(project, selective_execution_config=select_train(), parameters={"Alpha": 2.0})
    assert (runs(project.parent, "prep"), runs(project.parent, "train")) == (1, 2)
    assert reference


def test_a_change_the_planner_could_not_see_stops_the_selected_step_before_it_works(project: Path):
    """The DAG the plan was made from was built before the data changed (as a serialized DAG can be
    older than the files): the selected step checks its reused upstream steps on the worker."""
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import collect_result, create_run, drive_run
    from airflow_provider_mlpipe.model import Pipeline
    from airflow_provider_mlpipe.selective.runs import apply_plan, plan_for_dag

    start(project)
    dag = build_dag(Pipeline.from_yaml(project))
    from airflow.utils.session import create_session

    with create_session() as session:
        plan = plan_for_dag(dag, select_train(), {}, session=session)
    (project.parent / "data" / "raw.csv").write_text("x,y\n9,9\n")  # after the plan, before the run

    run_id = create_run(
        dag, conf=plan.conf(), prepare=lambda run, session: apply_plan(plan, run, session=session)
    )
    drive_run(build_dag(Pipeline.from_yaml(project)), run_id)

    result = collect_result(dag.dag_id, run_id)
    assert result.state == "failed"
    assert result.task("Train").state == "failed" and runs(project.parent, "train") == 1
    from airflow_provider_mlpipe.client.local import LocalSession

    train = {step.step_name: step for step in LocalSession().list_steps(dag.dag_id, run_id)}["Train"]
    assert "step(s) reused upstream of it changed since they were computed" in train.failure_reason
    assert (
        "Prep" in train.failure_reason
        and "input file data/raw.csv (inputs.raw) changed" in train.failure_reason
    )


def plan_and_run(project: Path, tamper) -> tuple[dict, str, str]:
    """Plan a selective run of Train and Register from the last run, let ``tamper(plan, run, session)``
    change what the run was created with, and run it; returns the plan's conf, the DAG id and the run
    id."""
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import create_run, drive_run
    from airflow_provider_mlpipe.model import Pipeline
    from airflow_provider_mlpipe.selective.runs import apply_plan, plan_for_dag

    dag = build_dag(Pipeline.from_yaml(project))
    with create_session() as session:
        plan = plan_for_dag(dag, select_train(), {}, session=session)
    conf = plan.conf()

    def prepare(run, session):
        apply_plan(plan, run, session=session)
        tamper(plan, run, session)

    run_id = create_run(dag, conf=conf, prepare=prepare)
    drive_run(dag, run_id)
    return conf, dag.dag_id, run_id


def test_a_selected_step_checks_its_reused_steps_by_one_digest_in_the_conf(project: Path):
    """Nothing changed: the digest the run's creation put in the conf for the selected step matches the
    one the step computes, and it reads no fingerprint (here they say, falsely, that Prep's code
    changed: the step-by-step check would have refused)."""
    from airflow_provider_mlpipe.local_runner import collect_result
    from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID
    from airflow_provider_mlpipe.selective.model import CONF_KEY, FINGERPRINTS_XCOM_KEY, REUSED_CHECK_KEY
    from airflow_provider_mlpipe.selective.xcom_rows import add_xcoms

    start(project)

    def false_fingerprints(plan, run, session):
        fingerprints = plan.fingerprints()
        fingerprints["Prep"] = {**fingerprints["Prep"], "digest": "sha256:" + "0" * 64}
        add_xcoms(run, FINGERPRINTS_XCOM_KEY, {OUTCOME_TASK_ID: fingerprints}, session=session)

    conf, dag_id, run_id = plan_and_run(project, false_fingerprints)

    checks = conf[CONF_KEY][REUSED_CHECK_KEY]
    assert sorted(checks) == ["Register", "Train"]  # each selected step has Prep upstream
    assert all(len(check) == 32 for check in checks.values())
    result = collect_result(dag_id, run_id)
    assert result.state == "success", result
    assert runs(project.parent, "prep") == 1 and runs(project.parent, "train") == 2


def test_a_digest_that_does_not_match_falls_back_to_the_step_by_step_check(project: Path):
    """A run whose conf digest does not match (here, a wrong one) compares each reused step with its
    fingerprint; nothing changed, so the selected steps run."""
    from airflow.models.dagrun import DagRun

    from airflow_provider_mlpipe.local_runner import collect_result
    from airflow_provider_mlpipe.selective.model import CONF_KEY, REUSED_CHECK_KEY

    start(project)

    def wrong_digest(plan, run: DagRun, session):
        block = dict(run.conf[CONF_KEY])
        block[REUSED_CHECK_KEY] = {name: "0" * 32 for name in block[REUSED_CHECK_KEY]}
        run.conf = {**run.conf, CONF_KEY: block}

    _, dag_id, run_id = plan_and_run(project, wrong_digest)

    result = collect_result(dag_id, run_id)
    assert result.state == "success", result
    assert runs(project.parent, "prep") == 1 and runs(project.parent, "train") == 2
