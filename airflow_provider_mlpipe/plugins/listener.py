"""Scheduler listener: check a pipeline run's conf when the scheduler starts the run, honour a
``selective_execution`` block given in a plain trigger's conf, and note on each failed step's task
instance why it failed.

A conf that names a parameter the pipeline does not have (``MaxDepht``) is refused: the run fails
with the reason as its note before any step runs, instead of running with the default value.

``airflow dags trigger --conf '{"selective_execution": {...}}'`` (or the REST API's plain trigger)
creates a queued run with every task still to do. When the scheduler starts that run, before it
schedules any task, this listener records the reused steps in the scheduler's own transaction, so no
reused step starts a task process. Applying the block is all or nothing: it happens inside a
savepoint, and any error (a refused selection, or anything else) rolls the savepoint back and fails
the run with the reason as its note, before any step runs.

A failed selected step fails the run without help from here: every pipeline ends with an outcome task
(``operators/outcome.py``) that makes the scheduler itself decide "failed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from airflow.listeners import hookimpl

from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID

log = logging.getLogger(__name__)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """Refuse a pipeline run given unknown parameters; apply a selective block not applied yet."""
    from airflow_provider_mlpipe.selective.model import is_unapplied_selective_run

    dag = getattr(dag_run, "dag", None)
    if dag is None or OUTCOME_TASK_ID not in getattr(dag, "task_dict", {}):
        return  # not a pipeline
    unknown = unknown_parameters_message(dag, dag_run.conf)
    selective = is_unapplied_selective_run(dag_run.conf)
    if unknown is None and not selective:
        return
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        log.error("mlpipe: cannot check run %s: it has no DB session", dag_run.run_id)
        return
    if unknown is not None:
        log.warning("mlpipe: run %s refused: %s", dag_run.run_id, unknown)
        refuse(dag_run, unknown, session=session, what="Run")
    elif selective:
        apply_or_fail(dag_run, dag, session)


def unknown_parameters_message(dag: Any, conf: Any) -> str | None:
    """Why a run's conf is refused, if it names parameters the pipeline does not have (a misspelt name
    would otherwise be ignored, and the run would use the default)."""
    import difflib

    from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
    from airflow_provider_mlpipe.selective.model import CONF_KEY

    known = list(dag.params.keys())
    reserved = (CONF_KEY, NO_CACHE_CONF_KEY)
    unknown = sorted(key for key in (conf or {}) if key not in reserved and key not in known)
    if not unknown:
        return None
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return f"unknown parameter(s) {', '.join(hints)}; the pipeline has: {', '.join(known) or 'none'}"


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """Note on each failed step's task instance why it failed (see ``note_failed_steps``), and on
    each cache hit where its outputs come from."""
    note_failed_steps(dag_run)
    note_cache_hits(dag_run)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """Note on each cache hit where its outputs come from (a task cannot write its own note)."""
    note_cache_hits(dag_run)


def note_failed_steps(dag_run: Any) -> None:
    """Copy each failed step's ``mlpipe_failure`` reason into its task instance's note.

    Runs in the scheduler's transaction; never raises (a listener error must not disturb it).
    """
    from airflow_provider_mlpipe import dagruns

    _note_in_run_session(
        dag_run, dagruns.note_failed_steps, "mlpipe: could not note why the steps of run %s failed"
    )


def note_cache_hits(dag_run: Any) -> None:
    """Note each cache hit's source on its task instance; never raises (see ``note_failed_steps``)."""
    from airflow_provider_mlpipe import dagruns

    if OUTCOME_TASK_ID not in getattr(getattr(dag_run, "dag", None), "task_dict", {}):
        return  # not a pipeline
    _note_in_run_session(dag_run, dagruns.note_cache_hits, "mlpipe: could not note the cache hits of run %s")


def _note_in_run_session(dag_run: Any, write_notes: Callable[..., object], failure: str) -> None:
    """Call ``write_notes`` in the session ``dag_run`` belongs to (none: nothing to do); never raises.

    :param write_notes: ``write_notes(dag_run, session=...)``, one of :mod:`~airflow_provider_mlpipe.dagruns`'
        note writers.
    :param failure: the message logged with the exception, ``%s`` standing for the run id.
    """
    from sqlalchemy.orm import object_session

    try:
        session = object_session(dag_run)
        if session is not None:
            write_notes(dag_run, session=session)
    except Exception:
        log.exception(failure, dag_run.run_id)


def apply_or_fail(dag_run: Any, dag: Any, session: Any) -> bool:
    """Record the selective plan in ``dag_run``, or fail the run with the reason as its note.

    Never raises: an exception out of a listener would stop the scheduler's loop. Returns whether the
    plan was applied.
    """
    from airflow_provider_mlpipe.exceptions import MlpipeError
    from airflow_provider_mlpipe.selective.runs import apply_conf_block

    try:
        with savepoint(session):  # on any error, nothing of the plan stays
            plan = apply_conf_block(dag_run, dag, session=session)
    except Exception as error:
        reason = str(error) if isinstance(error, MlpipeError) else f"{type(error).__name__}: {error}"
        log.warning("mlpipe: selective run %s refused: %s", dag_run.run_id, reason, exc_info=True)
        try:
            refuse(dag_run, reason, session=session)
        except Exception:
            log.exception("mlpipe: could not mark selective run %s failed", dag_run.run_id)
        return False
    log.info("mlpipe: selective run %s: %s", dag_run.run_id, plan.note())
    return True


@contextmanager
def savepoint(session: Any) -> Iterator[None]:
    """Run the block in a database savepoint of ``session``'s transaction; on an error, undo it.

    The scheduler forbids commits in its session while it holds its locks (Airflow's commit guard
    raises on any ORM commit, the release of an ORM savepoint included). So the savepoint is taken
    on the session's connection, below the ORM, where the guard does not look. The session is
    flushed first, so that what the scheduler changed before is in the database outside the
    savepoint; after a rollback every object is expired (it reloads what the database holds) and the
    objects added but not yet written are dropped.
    """
    session.flush()
    nested = session.connection().begin_nested()
    try:
        yield
        session.flush()
    except BaseException:
        nested.rollback()
        for obj in list(session.new):
            if obj in session:
                session.expunge(obj)
        session.expire_all()
        raise
    nested.commit()


def refuse(dag_run: Any, reason: str, *, session: Any, what: str = "Selective execution") -> None:
    """Fail a run before any of its steps runs, with the reason as its note."""
    from airflow.utils.state import DagRunState

    dag_run.set_state(DagRunState.FAILED)
    dag_run.note = f"{what} refused: {reason}"
    session.flush()
