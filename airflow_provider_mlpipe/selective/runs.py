"""Create selective runs in Airflow's metadata DB: read the reference run, plan, record reused steps.

Everything happens in the caller's DB session, so a selective run is created and its reused steps are
recorded (state, note, XCom references) in one transaction: the scheduler never sees the run without
them, and never starts a task process for a reused step. Three callers share this module: the
plugin endpoint in the api-server, the scheduler listener (for runs triggered with a plain
``selective_execution`` conf block) and local mode (``mlpipe run --select``).

The reference run is only read, never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
from airflow_provider_mlpipe.dagruns import RETURN_VALUE, read_step_records, state_text
from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID, step_infos_from_dag
from airflow_provider_mlpipe.selective.model import (
    CONF_KEY,
    FINGERPRINTS_XCOM_KEY,
    FINISHED_RUN_STATES,
    ReferenceRun,
    ReferenceStep,
    SelectiveExecutionConfig,
    SelectivePlan,
    is_unapplied_selective_run,
)
from airflow_provider_mlpipe.selective.plan import (
    check_selected_names,
    choose_reference_run,
    plan_selective_run,
)

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

# How many refused selective runs the default reference may look past.
REFUSED_RUNS_SKIPPED = 20


def reference_candidates(dag_id: str, source_run_id: str | None, *, session: Session) -> list[ReferenceRun]:
    """The run named ``source_run_id`` (in any DAG, so a run of another pipeline is named as such),
    or the latest finished run of ``dag_id``; with its task states and step records."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import select

    if source_run_id is not None:
        # The (dag_id, run_id) lookup uses the unique index; only a miss looks in other DAGs, to say
        # "that is a run of another pipeline" rather than "no such run".
        own = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == source_run_id)
        anywhere = select(DagRun).where(DagRun.run_id == source_run_id).limit(1)
        runs = list(session.scalars(own)) or list(session.scalars(anywhere))
    else:
        query = (
            select(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.state.in_(sorted(FINISHED_RUN_STATES)))
            .order_by(DagRun.end_date.desc(), DagRun.id.desc())
            .limit(REFUSED_RUNS_SKIPPED + 1)
        )
        # A selective run that was refused (its block never applied) ran nothing: not a reference.
        runs = [run for run in session.scalars(query) if not is_unapplied_selective_run(run.conf)]
    return [_reference_run(run, session=session) for run in runs[:1]]


def _reference_run(run: DagRun, *, session: Session) -> ReferenceRun:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    records = read_step_records(run.dag_id, run.run_id, session=session)
    # Task ids and states only: a task instance object would load its run with it (a joined load),
    # decoding the run's conf once per row.
    states = session.execute(
        select(TaskInstance.task_id, TaskInstance.state).where(
            TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id
        )
    )
    steps = {
        task_id: ReferenceStep(task_id, state_text(state), records.get(task_id)) for task_id, state in states
    }
    return ReferenceRun(
        pipeline=run.dag_id,
        run_id=run.run_id,
        state=state_text(run.state) or "",
        conf=dict(run.conf or {}),
        steps=steps,
    )


def plan_for_dag(
    dag: Any,
    config: SelectiveExecutionConfig,
    overrides: Mapping[str, Any] | None,
    *,
    session: Session,
) -> SelectivePlan:
    """Plan a selective run of ``dag`` (refusing bad selections) without creating anything.

    :param dag: the current definition (a factory-built DAG or its serialized form).
    :param config: the selection and reference run.
    :param overrides: parameter values that replace the reference run's.
    """
    steps = step_infos_from_dag(dag)
    check_selected_names(dag.dag_id, steps, config)
    reference = choose_reference_run(
        reference_candidates(dag.dag_id, config.source_run_id, session=session),
        config.source_run_id,
        dag.dag_id,
    )
    plan = plan_selective_run(
        dag.dag_id, steps, config, reference, parameter_defaults=parameter_defaults(dag), overrides=overrides
    )
    _validate_parameters(dag, plan)
    return plan


def parameter_defaults(dag: Any) -> dict[str, Any]:
    """Each param of ``dag`` with its default (None for a required one), from either kind of DAG."""
    defaults = {}
    for name, param in dag.params.items():
        value = getattr(param, "value", None)
        defaults[name] = value if isinstance(value, (str, int, float, bool, list, dict)) else None
    return defaults


def _validate_parameters(dag: Any, plan: SelectivePlan) -> None:
    """Check the run's parameter values against the DAG's typed params before anything is created.

    Works on the params of a DAG file's DAG and of a serialized DAG alike: both carry a JSON schema.
    """
    from jsonschema import ValidationError, validate

    errors = []
    for name, value in plan.parameters.items():
        try:
            validate(value, dag.params.get_param(name).schema)
        except ValidationError as error:
            errors.append(f"{name}={value!r}: {error.message}")
    if errors:
        raise SelectiveExecutionError(f"invalid parameters for pipeline {dag.dag_id!r}: {'; '.join(errors)}")


def apply_plan(plan: SelectivePlan, run: DagRun, *, session: Session, new_run: bool = False) -> None:
    """Record the plan in ``run``: reused steps succeeded (with their XCom references and a note),
    the others skipped with the reason, by statements executed in ``session``; the caller commits.

    The reused steps' fingerprints go in one XCom of the outcome task (see
    ``FINGERPRINTS_XCOM_KEY``), where the selected steps read them. A fixed number of statements
    whatever the number of steps, and no task instance loaded as an object: one query for the task
    instances' ids, one update for each state, one insert for the notes and one for the XComs, each
    after a delete of those already there unless ``new_run``.

    :param new_run: ``run`` was created in this transaction, so none of its task instances has a
        note or an XCom yet: the deletes are left out (three statements, about 5 ms on Postgres).
    """
    from airflow.models.taskinstance import TaskInstance, TaskInstanceNote
    from airflow.sdk import timezone
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import delete, insert, select, update

    from airflow_provider_mlpipe.selective.xcom_rows import add_xcoms

    now = timezone.utcnow()
    replace = not new_run  # a run made in this transaction has no notes or XComs to replace
    ids = dict(
        session.execute(
            select(TaskInstance.task_id, TaskInstance.id).where(
                TaskInstance.dag_id == run.dag_id,
                TaskInstance.run_id == run.run_id,
                TaskInstance.map_index == -1,
            )
        ).all()
    )
    missing = sorted((set(plan.reused) | set(plan.reused_skipped) | set(plan.not_run)) - set(ids))
    if missing:
        raise SelectiveExecutionError(f"run {run.run_id} has no task for step(s) {', '.join(missing)}")
    skipped = {**{name: plan.reused_note(name) for name in plan.reused_skipped}, **plan.not_run}
    notes = {**{name: plan.reused_note(name) for name in plan.reused}, **skipped}
    for state, names in ((TaskInstanceState.SUCCESS, plan.reused), (TaskInstanceState.SKIPPED, skipped)):
        if names:
            # "auto": a task instance the session already holds (the scheduler's, when the listener
            # applies a conf block) is updated too, so nothing later in the transaction sees it stale.
            session.execute(
                update(TaskInstance)
                .where(TaskInstance.id.in_([ids[name] for name in names]))
                .values(state=state, start_date=now, end_date=now, duration=0)
                .execution_options(synchronize_session="auto")
            )
    if notes:
        # What ``ti.note = text`` writes (Airflow's TaskInstanceNote, no user), for all at once.
        if replace:
            note_ids = [ids[name] for name in notes]
            session.execute(delete(TaskInstanceNote).where(TaskInstanceNote.ti_id.in_(note_ids)))
        session.execute(
            insert(TaskInstanceNote),
            [
                {"ti_id": ids[name], "content": note, "user_id": None, "created_at": now, "updated_at": now}
                for name, note in notes.items()
            ],
        )
    # Stored as the Task SDK stores a pushed value (plain JSON, not re-encoded), so the tasks
    # downstream pull it exactly as if the step had run in this run.
    add_xcoms(run, RETURN_VALUE, plan.reused, session=session, replace=replace)
    if plan.reused and OUTCOME_TASK_ID in ids:
        fingerprints = {OUTCOME_TASK_ID: plan.fingerprints()}
        add_xcoms(run, FINGERPRINTS_XCOM_KEY, fingerprints, session=session, replace=replace)


def create_selective_run(
    dag_id: str,
    config: SelectiveExecutionConfig,
    overrides: Mapping[str, Any] | None = None,
    *,
    session: Session,
    triggering_user_name: str | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    no_cache: bool = False,
) -> tuple[DagRun | None, SelectivePlan]:
    """Plan and create a queued selective run of the latest version of ``dag_id``, in ``session``.

    :param dag_id: the pipeline.
    :param config: the selection and the reference run.
    :param overrides: parameter values that replace the reference run's.
    :param session: the transaction that creates the run; the caller commits.
    :param triggering_user_name: who asked for the run.
    :param dry_run: plan only (to show what would happen); nothing is written.
    :param run_id: the new run's id (default: Airflow's ``manual__<time>``).
    :param no_cache: the selected steps ignore the step cache.
    """
    from airflow_provider_mlpipe.dagruns import create_manual_run
    from airflow_provider_mlpipe.serialized_dags import latest_serialized_dag

    dag = latest_serialized_dag(dag_id, session=session)
    if dag is None:
        raise SelectiveExecutionError(f"no pipeline (DAG) named {dag_id!r}")
    plan = plan_for_dag(dag, config, overrides, session=session)
    plan.no_cache = no_cache
    if dry_run:
        return None, plan
    run = create_manual_run(
        dag,
        conf=plan.conf(),
        note=plan.note(),
        state="queued",
        triggered_by="rest_api",
        triggering_user_name=triggering_user_name,
        session=session,
        run_id=run_id,
    )
    apply_plan(plan, run, session=session, new_run=True)
    return run, plan


def is_same_selective_request(
    run: DagRun,
    config: SelectiveExecutionConfig,
    overrides: Mapping[str, Any],
    note: str | None,
) -> bool:
    """Whether ``run`` is the selective run that this request creates: the one an earlier copy of the
    request made (its answer was lost and the client sent it again with the same run id).

    The run records the resolved request: the reference run the request left to the default, the
    steps ``include_between`` added, the reference's parameters beside the overrides.
    """
    block = (run.conf or {}).get(CONF_KEY)
    if not isinstance(block, Mapping) or "reused_steps" not in block:
        return False
    selected = set(block.get("selected_steps") or [])
    requested = set(config.selected_steps)
    same_steps = requested <= selected if config.include_between else requested == selected
    conf = run.conf or {}
    return (
        same_steps
        and bool(block.get("include_between")) == config.include_between
        and (config.source_run_id is None or block.get("source_run_id") == config.source_run_id)
        and all(name in conf and conf[name] == value for name, value in overrides.items())
        and (note is None or run.note == note)
    )


def apply_conf_block(run: DagRun, dag: Any, *, session: Session) -> SelectivePlan:
    """Honour a ``selective_execution`` block given in a plain trigger's conf, on the run itself.

    Parameters given beside the block override the reference run's. Raises
    :class:`SelectiveExecutionError` if the selection is refused; the caller fails the run then.
    """
    conf = dict(run.conf or {})
    config = SelectiveExecutionConfig.from_conf(conf.get(CONF_KEY))
    overrides = {key: value for key, value in conf.items() if key not in (CONF_KEY, NO_CACHE_CONF_KEY)}
    plan = plan_for_dag(dag, config, overrides, session=session)
    plan.no_cache = bool(conf.get(NO_CACHE_CONF_KEY))
    run.conf = plan.conf()
    run.note = plan.note()
    apply_plan(plan, run, session=session)
    return plan
