"""Local mode of the executions API: ``pipeline.start(session=LocalSession())`` runs the execution in this
process, on the test SQLite DB, before it returns.

The same selective-execution semantics as ``tests/integration/test_selective_servers.py`` checks on real
servers, on a small pipeline of function steps that runs in well under a second:

    Load(Rows) -> Transform(Scale) -> Total -> Check(Total >= Threshold) -> Big | Small

Each test has its own pipeline name, so its executions are its own.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from airflow_provider_mlpipe import SelectiveExecutionConfig
from airflow_provider_mlpipe.client.executions import PipelineExecution, StepExecution
from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.exceptions import (
    ExecutionNotFoundError,
    ParameterValidationError,
    SelectiveExecutionError,
)
from airflow_provider_mlpipe.model import (
    ConditionGreaterThanOrEqualTo,
    ConditionStep,
    FunctionStep,
    ParameterInteger,
    Pipeline,
)
from tests.client import pipeline_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")

STEPS = ["Load", "Transform", "Total", "Check", "Big", "Small"]
DEFAULTS = {"Rows": 3, "Scale": 2, "Threshold": 5}
DOWNSTREAM_NOTE = "not selected: downstream of the selected steps"


def build(name: str, *, offset: int = 0) -> Pipeline:
    """The test pipeline; ``offset`` changes the definition of Load (and only of Load)."""
    rows = ParameterInteger("Rows", default_value=DEFAULTS["Rows"])
    scale = ParameterInteger("Scale", default_value=DEFAULTS["Scale"])
    threshold = ParameterInteger("Threshold", default_value=DEFAULTS["Threshold"])
    load = FunctionStep("Load", function=fns.load, arguments={"rows": rows, "offset": offset})
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
    return Pipeline(name, [rows, scale, threshold], [load, transform, total, check])


@pytest.fixture
def pipeline_name(request: pytest.FixtureRequest) -> str:
    """A pipeline name of this test only (parametrized cases included)."""
    return "local_" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:150]


@pytest.fixture
def pipeline(pipeline_name: str) -> Pipeline:
    return build(pipeline_name)


@pytest.fixture
def session() -> LocalSession:
    return LocalSession()


@pytest.fixture
def reference(pipeline: Pipeline, session: LocalSession) -> PipelineExecution:
    """A full run with the default parameters: Total is 6, so Check takes the if branch (Big)."""
    execution = pipeline.start(session=session)
    assert execution.describe().status == "success"
    return execution


@pytest.fixture
def failed_run(pipeline: Pipeline, session: LocalSession, reference: PipelineExecution) -> PipelineExecution:
    """A full run that fails at Transform (a negative scale makes it raise); Load succeeded."""
    execution = pipeline.start({"Scale": -1}, session=session)
    assert execution.describe().status == "failed"
    steps = by_name(execution)
    assert steps["Load"].status == "success"
    assert steps["Transform"].status == "failed" and steps["Transform"].attempts == 1
    assert steps["Total"].status == "upstream_failed"
    return execution


def by_name(execution: PipelineExecution) -> dict[str, StepExecution]:
    return {step.step_name: step for step in execution.list_steps()}


def execution_ids(pipeline: Pipeline, session: LocalSession) -> list[str]:
    return [execution.execution_id for execution in pipeline.list_executions(session=session, limit=100)]


def output_value(step: StepExecution, output: str = "result") -> Any:
    """The value behind an output reference, read back from the artifact store."""
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value
    from airflow_provider_mlpipe.settings import artifact_store_for

    return load_value(artifact_store_for(), ArtifactRef.from_dict(step.outputs[output]))


def select(
    steps: list[str], source_run_id: str | None = None, *, include_between: bool = False
) -> SelectiveExecutionConfig:
    return SelectiveExecutionConfig(steps, source_run_id, include_between=include_between)


def assert_reused(
    step: StepExecution, source: PipelineExecution, origin: PipelineExecution | None = None
) -> None:
    """Recorded as done with the source run's outputs, without a task process.

    :param origin: the run where the step ran, when the source run itself reused it.
    """
    assert step.status == "success", step
    assert step.attempts == 0, f"reused step {step.step_name} started a task process"
    computed = f" (computed in run {origin.execution_id})" if origin is not None else ""
    assert step.note == f"reused from run {source.execution_id}{computed}"
    assert step.source_run_id == source.execution_id
    assert step.outputs == by_name(source)[step.step_name].outputs


def assert_not_run(step: StepExecution, note: str = DOWNSTREAM_NOTE) -> None:
    assert (step.status, step.attempts, step.note, step.outputs) == ("skipped", 0, note, {}), step


# -- full runs --------------------------------------------------------------------------------------
def test_a_full_run_finishes_before_start_returns_and_describes_itself(
    pipeline: Pipeline, session: LocalSession
):
    execution = pipeline.start({"Rows": 4}, session=session, note="first try")

    description = execution.describe()
    assert description.pipeline_name == pipeline.name
    assert description.execution_id == execution.execution_id
    assert description.status == "success"
    assert description.start_time is not None and description.end_time is not None
    assert description.start_time <= description.end_time
    assert description.parameters == {"Rows": 4}
    assert description.selective_execution is None
    assert description.note == "first try"
    assert execution.list_parameters() == {**DEFAULTS, "Rows": 4}

    steps = execution.list_steps()
    assert [step.step_name for step in steps] == STEPS
    ran = {step.step_name: step for step in steps if step.step_name != "Small"}
    for step in ran.values():
        assert step.status == "success" and step.attempts == 1, step
        assert step.source_run_id is None and step.note is None
        assert step.start_time is not None and step.end_time is not None
        assert step.start_time <= step.end_time
        output_ref = step.outputs["result" if step.step_name != "Check" else "outcome"]
        assert output_ref["type"] == "json" and output_ref["digest"].startswith("sha256:")
        assert output_ref["uri"].startswith("file://")
    # Rows=4: [0, 1, 2, 3] -> x2 -> total 12 >= 5: the if branch (Big) ran, Small was skipped.
    assert output_value(ran["Load"]) == [0, 1, 2, 3]
    assert output_value(ran["Transform"]) == [0, 2, 4, 6]
    assert output_value(ran["Total"]) == 12
    assert ran["Check"].metadata["outcome"] is True
    assert output_value(ran["Big"]) == "big: 12"
    small = steps[-1]
    assert (small.status, small.attempts, small.outputs) == ("skipped", 0, {})


def test_list_executions_is_newest_first_and_execution_finds_one_by_id(
    pipeline: Pipeline, session: LocalSession, pipeline_name: str
):
    first = pipeline.start(session=session)
    second = pipeline.start({"Scale": 3}, session=session)
    other = build(pipeline_name + "_other").start(session=session)

    listed = pipeline.list_executions(session=session)
    assert [execution.execution_id for execution in listed] == [second.execution_id, first.execution_id]
    assert all(isinstance(execution, PipelineExecution) for execution in listed)
    assert other.execution_id not in execution_ids(pipeline, session)
    assert [e.execution_id for e in pipeline.list_executions(session=session, limit=1)] == [
        second.execution_id
    ]

    found = pipeline.execution(first.execution_id, session=session)
    assert found.describe() == first.describe()
    assert found.list_steps() == first.list_steps()
    assert found.list_parameters() == DEFAULTS
    assert pipeline.execution(second.execution_id, session=session).list_parameters()["Scale"] == 3


def test_a_wrong_parameter_type_is_refused_before_a_full_run_is_created(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    before = execution_ids(pipeline, session)
    with pytest.raises(ParameterValidationError, match="Scale"):
        pipeline.start({"Scale": "big"}, session=session)
    assert execution_ids(pipeline, session) == before


# -- selective runs ---------------------------------------------------------------------------------
def test_a_selective_run_of_a_middle_step_reuses_upstream_and_skips_downstream(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    reference_before = reference.list_steps()

    execution = pipeline.start({"Scale": 3}, select(["Transform"]), session=session)

    description = execution.describe()
    assert description.status == "success"
    assert description.selective_execution == {
        "selected_steps": ["Transform"],
        "source_run_id": reference.execution_id,
        "include_between": False,
        "reused_steps": ["Load"],
        "reused_skipped_steps": {},
        "not_run": {name: DOWNSTREAM_NOTE for name in ("Big", "Check", "Small", "Total")},
    }
    assert description.note == (
        f"Selective execution of Transform; other steps from run {reference.execution_id}"
    )
    assert execution.list_parameters() == {**DEFAULTS, "Scale": 3}

    steps = by_name(execution)
    assert list(steps) == STEPS
    assert_reused(steps["Load"], reference)
    transform = steps["Transform"]
    assert (transform.status, transform.attempts, transform.source_run_id) == ("success", 1, None)
    assert output_value(transform) == [0, 3, 6]  # the reference's Load output, scaled by the new value
    assert (
        transform.outputs["result"]["digest"] != by_name(reference)["Transform"].outputs["result"]["digest"]
    )
    for name in ("Total", "Check", "Big", "Small"):
        assert_not_run(steps[name])

    assert reference.list_steps() == reference_before, "the reference run was changed"


def test_the_default_reference_is_the_latest_finished_run_and_source_run_id_picks_another(
    pipeline: Pipeline, session: LocalSession
):
    older = pipeline.start({"Rows": 2}, session=session)
    newer = pipeline.start({"Rows": 4}, session=session)

    by_default = pipeline.start(None, select(["Transform"]), session=session)
    assert by_default.describe().selective_execution["source_run_id"] == newer.execution_id
    assert_reused(by_name(by_default)["Load"], newer)
    # The parameters are the reference run's: Rows=4.
    assert by_default.list_parameters()["Rows"] == 4
    assert output_value(by_name(by_default)["Transform"]) == [0, 2, 4, 6]

    chosen = pipeline.start(None, select(["Transform"], older.execution_id), session=session)
    assert chosen.describe().selective_execution["source_run_id"] == older.execution_id
    assert_reused(by_name(chosen)["Load"], older)
    assert chosen.list_parameters()["Rows"] == 2
    assert output_value(by_name(chosen)["Transform"]) == [0, 2]


def test_a_selective_run_can_be_the_reference_of_the_next(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    first = pipeline.start({"Scale": 10}, select(["Transform"]), session=session)
    # Total needs Transform (ran in `first`) and Load (reused in `first` from `reference`).
    second = pipeline.start(None, select(["Total"]), session=session)

    assert second.describe().status == "success"
    assert second.describe().selective_execution["source_run_id"] == first.execution_id
    assert second.list_parameters()["Scale"] == 10
    steps = by_name(second)
    assert_reused(steps["Load"], first, origin=reference)
    assert_reused(steps["Transform"], first)
    assert steps["Total"].attempts == 1 and output_value(steps["Total"]) == 30  # (0 + 1 + 2) * 10
    assert steps["Load"].outputs == by_name(reference)["Load"].outputs


def test_include_between_selects_the_steps_between_the_selected_ones(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    execution = pipeline.start({"Scale": 3}, select(["Load", "Total"], include_between=True), session=session)

    description = execution.describe()
    assert description.status == "success"
    assert description.selective_execution["selected_steps"] == ["Load", "Transform", "Total"]
    assert description.selective_execution["reused_steps"] == []
    steps = by_name(execution)
    for name in ("Load", "Transform", "Total"):
        assert (steps[name].status, steps[name].attempts) == ("success", 1), steps[name]
    assert output_value(steps["Total"]) == 9  # (0 + 1 + 2) * 3
    for name in ("Check", "Big", "Small"):
        assert_not_run(steps[name])


def test_a_reused_condition_keeps_its_outcome(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    # In the reference Check took the if branch (Total 6 >= Threshold 5): Big may run again alone.
    big = pipeline.start(None, select(["Big"]), session=session)
    assert big.describe().status == "success"
    steps = by_name(big)
    for name in ("Load", "Transform", "Total", "Check"):
        assert_reused(steps[name], reference)
    assert steps["Check"].metadata["outcome"] is True
    assert steps["Big"].attempts == 1 and output_value(steps["Big"]) == "big: 6"
    assert_not_run(steps["Small"], "not selected and not needed by a selected step")

    # Small is in the branch not taken: refused, naming the condition and the way out.
    before = execution_ids(pipeline, session)
    with pytest.raises(SelectiveExecutionError) as refused:
        pipeline.start(None, select(["Small"], reference.execution_id), session=session)
    message = str(refused.value)
    assert "Small are in the else branch of Check" in message
    assert "select Check too" in message
    assert execution_ids(pipeline, session) == before

    # Selecting the condition too evaluates it again, here with a threshold only Check reads.
    small = pipeline.start(
        {"Threshold": 100}, select(["Check", "Small"], reference.execution_id), session=session
    )
    assert small.describe().status == "success"
    steps = by_name(small)
    assert steps["Check"].attempts == 1 and steps["Check"].metadata["outcome"] is False
    assert steps["Small"].attempts == 1 and output_value(steps["Small"]) == "small: 6"
    assert steps["Big"].status == "skipped" and steps["Big"].attempts == 0


@pytest.mark.parametrize(
    ("steps", "source", "parameters", "message"),
    [
        (["Trnsform"], "reference", {}, "has no step(s) Trnsform; its steps: Load, Transform, Total"),
        ([], "reference", {}, "select at least one step"),
        (["Load", "Total"], "reference", {}, "step(s) Transform lie between selected steps"),
        (["Transform"], "reference", {"Scael": 3}, "unknown parameter(s) Scael"),
        (["Transform"], "reference", {"Scale": "big"}, "Scale='big'"),
        (
            ["Transform"],
            "reference",
            {"Rows": 5},
            "Load (it reads parameter(s) that differ: Rows was 3, now 5)",
        ),
        (["Transform"], "no_such_run", {}, "has no run 'no_such_run'"),
    ],
    ids=[
        "unknown-step",
        "empty-selection",
        "gap",
        "unknown-parameter",
        "wrong-type",
        "reused-step-parameter",
        "missing-reference",
    ],
)
def test_a_bad_selection_is_refused_before_any_run_is_created(
    pipeline: Pipeline,
    session: LocalSession,
    reference: PipelineExecution,
    steps: list[str],
    source: str,
    parameters: dict[str, Any],
    message: str,
):
    source_run_id = reference.execution_id if source == "reference" else source
    before = execution_ids(pipeline, session)
    with pytest.raises(SelectiveExecutionError, match=re.escape(message)):
        pipeline.start(parameters, select(steps, source_run_id), session=session)
    assert execution_ids(pipeline, session) == before


def test_a_selective_run_without_any_finished_run_is_refused(pipeline: Pipeline, session: LocalSession):
    with pytest.raises(SelectiveExecutionError, match="has no finished run to take outputs from"):
        pipeline.start(None, select(["Transform"]), session=session)
    assert execution_ids(pipeline, session) == []


def test_a_run_of_another_pipeline_is_refused_as_reference(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution, pipeline_name: str
):
    other_pipeline = build(pipeline_name + "_other")
    other = other_pipeline.start(session=session)
    before = execution_ids(pipeline, session)
    with pytest.raises(SelectiveExecutionError) as refused:
        pipeline.start(None, select(["Transform"], other.execution_id), session=session)
    assert f"is a run of pipeline {other_pipeline.name!r}, not of {pipeline.name!r}" in str(refused.value)
    assert execution_ids(pipeline, session) == before
    assert execution_ids(other_pipeline, session) == [other.execution_id]


def test_a_needed_step_that_failed_in_the_reference_is_refused(
    pipeline: Pipeline, session: LocalSession, failed_run: PipelineExecution
):
    before = execution_ids(pipeline, session)
    with pytest.raises(SelectiveExecutionError) as refused:
        pipeline.start(None, select(["Total"], failed_run.execution_id), session=session)
    message = str(refused.value)
    assert "Transform (it did not succeed in that run: failed)" in message
    assert "Select these steps too, or pick another reference run" in message
    assert execution_ids(pipeline, session) == before


def test_the_failed_step_of_a_failed_run_runs_again_with_a_fixed_parameter(
    pipeline: Pipeline, session: LocalSession, failed_run: PipelineExecution
):
    failed_before = failed_run.list_steps()

    fixed = pipeline.start({"Scale": 2}, select(["Transform"], failed_run.execution_id), session=session)

    assert fixed.describe().status == "success"
    assert fixed.list_parameters()["Scale"] == 2
    steps = by_name(fixed)
    assert_reused(steps["Load"], failed_run)
    assert steps["Transform"].status == "success" and steps["Transform"].attempts == 1
    assert output_value(steps["Transform"]) == [0, 2, 4]
    assert failed_run.list_steps() == failed_before, "the failed reference run was changed"
    assert failed_run.describe().status == "failed"


def test_a_selective_run_whose_selected_step_fails_ends_failed(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    execution = pipeline.start({"Scale": -1}, select(["Transform"]), session=session)
    assert by_name(execution)["Transform"].status == "failed"
    assert execution.describe().status == "failed"


def test_a_changed_upstream_definition_is_refused(
    session: LocalSession, reference: PipelineExecution, pipeline_name: str
):
    changed = build(pipeline_name, offset=1)  # Load's arguments changed since the reference run
    before = execution_ids(changed, session)
    with pytest.raises(SelectiveExecutionError) as refused:
        changed.start(None, select(["Transform"], reference.execution_id), session=session)
    assert "Load (its definition or code changed since that run)" in str(refused.value)
    assert execution_ids(changed, session) == before

    # Selecting the changed step as well runs it with its new definition.
    rerun = changed.start(None, select(["Load", "Transform"], reference.execution_id), session=session)
    assert rerun.describe().status == "success"
    assert output_value(by_name(rerun)["Transform"]) == [2, 4, 6]  # [1, 2, 3] x 2


# -- stop, unknown executions, threads ----------------------------------------------------------------
def test_stop_leaves_a_finished_execution_as_it_was(reference: PipelineExecution):
    described, steps = reference.describe(), reference.list_steps()
    reference.stop()
    assert reference.describe() == described
    assert reference.list_steps() == steps
    assert described.status == "success"


@pytest.mark.parametrize("method", ["describe", "list_steps", "stop"])
def test_an_unknown_execution_id_is_not_found(
    session: LocalSession, reference: PipelineExecution, pipeline: Pipeline, method: str
):
    execution = pipeline.execution("no_such_execution", session=session)
    with pytest.raises(
        ExecutionNotFoundError, match=f"{pipeline.name!r} has no execution 'no_such_execution'"
    ):
        getattr(execution, method)()


def start_from_threads(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution, scales: list[int]
) -> dict[int, PipelineExecution]:
    """Start a selective run of Transform per scale, each from its own thread, all at once."""
    started: dict[int, PipelineExecution] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(scales))

    def start(scale: int) -> None:
        try:
            barrier.wait(timeout=60)
            started[scale] = pipeline.start(
                {"Scale": scale}, select(["Transform"], reference.execution_id), session=session
            )
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(scale,)) for scale in scales]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a start did not return"
    assert not errors, errors
    return started


def test_starts_from_several_threads_run_one_after_the_other(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    scales = [3, 4, 5]
    started = start_from_threads(pipeline, session, reference, scales)

    assert sorted(started) == scales
    assert len({execution.execution_id for execution in started.values()}) == len(scales)
    descriptions = {scale: execution.describe() for scale, execution in started.items()}
    for scale, description in descriptions.items():
        assert description.parameters == {"Scale": scale}
        assert description.end_time is not None
    # Serialized in process: no run started before the previous one ended.
    spans = sorted((d.start_time, d.end_time) for d in descriptions.values())
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, spans


def test_runs_started_from_threads_succeed_each_with_its_own_output(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    scales = [3, 4, 5]
    started = start_from_threads(pipeline, session, reference, scales)

    for scale, execution in started.items():
        steps = by_name(execution)
        assert steps["Transform"].status == "success", steps["Transform"]
        assert execution.describe().status == "success"
        assert output_value(steps["Transform"]) == [0, scale, 2 * scale]
        assert_reused(steps["Load"], reference)
    digests = {by_name(e)["Transform"].outputs["result"]["digest"] for e in started.values()}
    assert len(digests) == len(scales)


# -- only computed outcomes are reused (issue 6) -----------------------------------------------------
def test_steps_a_selective_reference_did_not_run_are_refused_not_reused_as_skipped(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    # Seen: R, then S of Transform only, then Big from S: Check was "reused (skipped there)" and the
    # run registered an unchecked result as a success. And Check alone from S "succeeded", skipped.
    only_transform = pipeline.start({"Scale": 3}, select(["Transform"]), session=session)
    before = execution_ids(pipeline, session)

    for selected, missing in ((["Big"], ["Check", "Total"]), (["Check"], ["Total"])):
        with pytest.raises(SelectiveExecutionError) as refused:
            pipeline.start(None, select(selected, only_transform.execution_id), session=session)
        message = str(refused.value)
        for name in missing:
            assert (
                f"{name} (it did not run in that run: run {only_transform.execution_id} was a selective run"
                in (message)
            )
    assert execution_ids(pipeline, session) == before

    # Selecting what S did not run works, and its upstream is followed back to where it ran.
    total = pipeline.start(
        None, select(["Total", "Check", "Big"], only_transform.execution_id), session=session
    )
    steps = by_name(total)
    assert total.describe().status == "success"
    assert steps["Load"].note == (
        f"reused from run {only_transform.execution_id} (computed in run {reference.execution_id})"
    )
    assert steps["Load"].outputs == by_name(reference)["Load"].outputs
    assert output_value(steps["Total"]) == 9  # (0 + 1 + 2) x 3, S's Transform


def test_a_selected_step_certain_to_be_skipped_is_refused(session: LocalSession, pipeline_name: str):
    # Announce reads the output of Small, which the reference run's condition skipped.
    base = build(pipeline_name)
    small = base.steps["Small"]
    announce = FunctionStep(
        "Announce", function=fns.label, arguments={"value": small.output("result"), "size": "!"}
    )
    pipeline = Pipeline(pipeline_name, list(base.parameters.values()), [*base.steps.values(), announce])
    reference = pipeline.start(session=session)
    assert by_name(reference)["Small"].status == "skipped"

    with pytest.raises(SelectiveExecutionError) as refused:
        pipeline.start(None, select(["Announce"]), session=session)
    assert "selected step(s) would be skipped, not run: Announce (it reads outputs of Small" in str(
        refused.value
    )
    # With the condition selected, a new threshold can send the run down the other branch.
    rerun = pipeline.start({"Threshold": 100}, select(["Check", "Small", "Announce"]), session=session)
    assert rerun.describe().status == "success"
    assert output_value(by_name(rerun)["Announce"]) == "!: small: 6"


def test_a_failed_selected_step_fails_the_run_through_airflows_own_state_decision(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select as sql_select

    from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID

    execution = pipeline.start({"Scale": -1}, select(["Transform"]), session=session)
    assert execution.describe().status == "failed"
    with create_session() as db:
        outcome = db.scalar(
            sql_select(TaskInstance.state).where(
                TaskInstance.dag_id == pipeline.name,
                TaskInstance.run_id == execution.execution_id,
                TaskInstance.task_id == OUTCOME_TASK_ID,
            )
        )
    assert str(outcome) == "upstream_failed"
    assert OUTCOME_TASK_ID not in by_name(execution)


def test_clearing_a_selective_run_reruns_its_selected_steps_and_reapplies_the_rest(
    pipeline: Pipeline, session: LocalSession, reference: PipelineExecution
):
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.session import create_session
    from sqlalchemy import select as sql_select

    from airflow_provider_mlpipe.local_runner import drive_run

    execution = pipeline.start({"Scale": 3}, select(["Transform"]), session=session)
    first = by_name(execution)

    # What "Clear" on the whole run does in the Airflow UI: every task back to no state.
    with create_session() as db:
        run = db.scalar(
            sql_select(DagRun).where(DagRun.dag_id == pipeline.name, DagRun.run_id == execution.execution_id)
        )
        clear_task_instances(run.get_task_instances(session=db), db, run_on_latest_version=False)
        run.state = "running"
    drive_run(pipeline.to_dag(), execution.execution_id)

    assert execution.describe().status == "success"
    cleared = by_name(execution)
    # The reused step took the reference's outputs again, and says so; it did not recompute.
    assert cleared["Load"].status == "success" and cleared["Load"].attempts == 1
    assert cleared["Load"].note == f"reused from run {reference.execution_id}"
    assert cleared["Load"].outputs == by_name(reference)["Load"].outputs
    assert cleared["Load"].source_run_id == reference.execution_id
    # The selected step ran again, with the same result; the rest stays not run.
    assert cleared["Transform"].attempts == 2
    assert cleared["Transform"].outputs == first["Transform"].outputs
    for name in ("Total", "Check", "Big", "Small"):
        assert cleared[name].status == "skipped" and cleared[name].outputs == {}, cleared[name]
        assert cleared[name].note == DOWNSTREAM_NOTE
