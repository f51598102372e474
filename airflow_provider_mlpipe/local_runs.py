"""Local runs and the processes that drive them: a run whose process ended is not left "running".

A local run (``mlpipe run``, ``pipeline.start()`` in local mode) is driven by the process that created
it. That process records itself (pid, host, and the process's start time, which tells a reused pid
apart) in ``$AIRFLOW_HOME/mlpipe/local-runs/`` in the transaction that creates the run, and removes the
record when the run ends. If the process is killed (``kill -9``, a closed terminal) the run would stay
running forever: the next local-mode call finds the record, sees that the process is gone, and marks
the run failed with a note saying so. Only runs with such a record, that is runs this local mode
created, are ever touched; a record from another host is left alone (its process cannot be checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.dagruns import FAILURE_KEY, failure_note, fit_note
from airflow_provider_mlpipe.files import write_whole
from airflow_provider_mlpipe.settings import airflow_home

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

# A process's start time as psutil reports it is a float; a reused pid has another start time.
_START_TIME_TOLERANCE_S = 1.0


def drivers_folder() -> Path:
    """Where the records of the processes driving local runs are: ``$AIRFLOW_HOME/mlpipe/local-runs``."""
    return airflow_home() / "mlpipe" / "local-runs"


@dataclass(frozen=True)
class Driver:
    """The process that drives a local run.

    :param started: the process's start time (seconds since the epoch), to tell a reused pid apart.
    """

    dag_id: str
    run_id: str
    pid: int
    host: str
    started: float

    @classmethod
    def this_process(cls, dag_id: str, run_id: str) -> Driver:
        import psutil

        return cls(dag_id, run_id, os.getpid(), socket.gethostname(), psutil.Process().create_time())

    def has_ended(self) -> bool:
        """Whether the process is gone. A process on another host is never taken as gone."""
        import psutil

        if self.host != socket.gethostname():
            return False
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
                return True
            return abs(process.create_time() - self.started) > _START_TIME_TOLERANCE_S
        except psutil.NoSuchProcess:
            return True

    def description(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _record_path(dag_id: str, run_id: str) -> Path:
    # Run ids hold ':' and '+'; the hash keeps two ids that read alike once cleaned apart.
    readable = re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{dag_id}__{run_id}")[:150]
    unique = hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:12]
    return drivers_folder() / f"{readable}-{unique}.json"


def record_driver(dag_id: str, run_id: str) -> Path:
    """Record this process as the driver of run ``run_id`` of ``dag_id``; return the record's path."""
    path = _record_path(dag_id, run_id)
    write_whole(path, json.dumps(asdict(Driver.this_process(dag_id, run_id))).encode())  # never half a record
    return path


def forget_driver(dag_id: str, run_id: str) -> None:
    """Remove the driver record of a run (it ended, or it was never created)."""
    _record_path(dag_id, run_id).unlink(missing_ok=True)


def read_drivers() -> list[Driver]:
    """The driver records of local runs not known to have ended; unreadable records are skipped."""
    drivers = []
    for path in sorted(drivers_folder().glob("*.json")):
        try:
            drivers.append(Driver(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return drivers


def reap_orphaned_runs() -> list[str]:
    """Mark failed every local run whose driving process ended; return their run ids."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    ended = [driver for driver in read_drivers() if driver.has_ended()]
    reaped = []
    with create_session() as session:
        for driver in ended:
            run = session.scalar(
                select(DagRun).where(DagRun.dag_id == driver.dag_id, DagRun.run_id == driver.run_id)
            )
            if run is not None and run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
                fail_run(
                    run,
                    f"Failed: the process that ran it ({driver.description()}) ended before the run finished.",
                    step_reason=f"the process running this step ({driver.description()}) ended before it finished",
                    session=session,
                )
                reaped.append(driver.run_id)
    for driver in ended:  # after the commit: a failed commit leaves the record for the next try
        forget_driver(driver.dag_id, driver.run_id)
    return reaped


@contextmanager
def interrupted(dag_id: str, run_id: str, *, session: Session) -> Iterator[None]:
    """If driving the run stops with an exception (Ctrl-C, an error), fail the run saying so, then re-raise.

    :param session: the driver's session, rolled back first (the exception may have come mid-change).
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    try:
        yield
    except BaseException as error:
        session.rollback()
        cause = type(error).__name__
        with create_session() as own:
            run = own.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
            if run is not None and run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
                fail_run(
                    run,
                    f"Failed: the process that ran it stopped ({cause}).",
                    step_reason=f"the process running this step stopped ({cause})",
                    session=own,
                )
        forget_driver(dag_id, run_id)
        raise


def fail_run(run: DagRun, note: str, *, step_reason: str | None, session: Session) -> None:
    """End ``run`` as failed, as Airflow's "mark failed" does, with ``note`` added to its note.

    Steps not started yet are skipped. With ``step_reason``, the steps still running (their process
    is gone) fail with that reason, recorded as a step failure is (XCom and note); without it, they
    are left to finish.
    """
    from airflow.sdk import timezone
    from airflow.utils.state import DagRunState, TaskInstanceState

    active = {
        TaskInstanceState.RUNNING,
        TaskInstanceState.QUEUED,
        TaskInstanceState.DEFERRED,
        TaskInstanceState.UP_FOR_RESCHEDULE,
        TaskInstanceState.RESTARTING,
    }
    pending = {None, TaskInstanceState.SCHEDULED, TaskInstanceState.UP_FOR_RETRY}
    now = timezone.utcnow()
    run.set_state(DagRunState.FAILED)
    run.note = fit_note(f"{run.note or ''} {note}".strip())
    for ti in run.get_task_instances(session=session):
        if ti.state in pending:
            ti.state = TaskInstanceState.SKIPPED
        elif ti.state in active and step_reason is not None:
            ti.state = TaskInstanceState.FAILED
            ti.end_date = now
            ti.duration = (now - ti.start_date).total_seconds() if ti.start_date else None
            _record_step_failure(ti, step_reason, session=session)
    session.flush()


def _record_step_failure(ti: Any, reason: str, *, session: Session) -> None:
    """Record why a step failed as its operator would have: the ``mlpipe_failure`` XCom, and a note."""
    from airflow.models.xcom import XComModel

    failure = {"reason": reason, "try_number": ti.try_number}
    # Stored as the Task SDK stores a pushed value (plain JSON), as selective runs store records.
    XComModel.set(
        key=FAILURE_KEY,
        value=failure,
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=ti.map_index,
        serialize=False,
        session=session,
    )
    if not ti.note:
        ti.note = failure_note(failure)
