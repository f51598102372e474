"""Selective execution under the real scheduler: a chain of no-op steps, then only its last step.

Starts api-server, scheduler (LocalExecutor) and dag-processor once, on 127.0.0.1 with SQLite in a
temporary ``AIRFLOW_HOME`` (``tests/integration/servers.py``), or with ``--database postgres`` on a
new database of the local Postgres (127.0.0.1:5432, user postgres, dropped at the end), and for each
chain length of ``--steps`` (a sweep: 20 and 100 by default):

1. makes ``--full`` full runs of a linear pipeline of that many no-op function steps (each reads the
   previous step's output); the last one is the source of the selective runs;
2. measures, ``--repeat`` times, a pair of runs, in turns one order and the other:
   - a selective run of the last step only, with that full run as the source (created through the
     plugin endpoint); the reused steps must be recorded as done (success, try 0, note "reused from
     run ...") and only the last step must run;
   - a full run of a one-step pipeline of the same no-op step.

For each run: wall time from the trigger request to the poll that sees the run finished (so up to one
``--poll`` interval more), and the run's own ``start_date -> end_date``. Goal: selective <= 1.1 x
one-step on both measures, whatever the number of reused steps (100 included). Also shows where a
run's time goes (trigger request, waiting to start, scheduling, task start, task body), and the
selected step's own figures from its record (``timings``). Exits non-zero if a run fails or the
selective run is not what it should be; it never asserts on timing.

Why many pairs and few full runs: a single-task run lasts about half a second, of which the
scheduler's loop (``scheduler_idle_sleep_time`` 0.2 s here) adds 0 to 0.2 s at random at each of
its three waits (start the run, queue the task, end the run). The medians of a few pairs would
mostly measure where those fell; a full run only provides the outputs to reuse.

Why both runs of a pair are triggered at the same fraction of a second: on SQLite, Airflow starts a
queued run once ``run_after <= CURRENT_TIMESTAMP``, and SQLite's ``CURRENT_TIMESTAMP`` has whole
seconds, so a run waits until the next whole second after its trigger (``queued``: 0 to 1 s, plus a
scheduler loop). Triggered a fixed ``--settle`` after the previous run was seen finished, a run's
wait was set by how long the run before it lasted: after a run of about 1 s (a selective one) the
next trigger fell just after a whole second and waited almost a second, after a 0.6 s run only a
third of one. Each kind's waits were then either short or long, and the median of each fell on one
side or the other by chance: the wall-time ratio moved by 0.1 to 0.3 between sweeps. Now pair ``i``
triggers both its runs at the same fraction ``(i x 0.618...) mod 1`` of a second, spread evenly over
the pairs, so both kinds wait alike and the ratio keeps what really differs (a selective run's
longer request can still cross a whole second, as it would for a user).

On SQLite one connection writes at a time, and a queued run starts 0 to 1 s late; on Postgres, as a
deployment has it, neither holds. A run's ``queued`` time starts when the run is created, so for a
selective run it also holds the rest of its request (recording the reused steps, then the commit).

Run: ``.venv/bin/python bench/bench_selective.py [--steps 20 100] [--repeat 15] [--full 1] [--poll 0.1]
[--settle 6] [--database sqlite|postgres]`` (about 12 minutes with the defaults; ``--keep`` keeps the
temporary home with its logs and, on SQLite, its DB).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.integration.servers, shared with the integration tests

from tests.integration.servers import AirflowServers, RestCalls, airflow_servers  # noqa: E402

GOAL = 1.1  # selective run / one-step run
ONE_STEP = "bench_selective_one"
FINISHED = {"success", "failed"}
# Imported by the task processes by module name: Airflow puts the dags folder on their sys.path.
NOOP_MODULE = "def identity(value=0):\n    return value\n"


# Task processes import the provider as a deployment has it installed: byte-compiled. With
# PYTHONDONTWRITEBYTECODE set (some shells and images set it), an editable checkout's modules are
# compiled again by every task process, about 70 ms of every task's start on this machine, which would
# weigh on both kinds of run alike and hide part of what differs between them. Empty means unset.
DEPLOYED_PYTHON = {"PYTHONDONTWRITEBYTECODE": ""}
# --database: how the table names each.
DATABASES = {"sqlite": "SQLite", "postgres": "Postgres"}


class BenchError(Exception):
    """A run failed or a selective run is not what it should be: the figures would be meaningless."""


def step_names(steps: int) -> list[str]:
    width = max(2, len(str(steps - 1)))
    return [f"s{index:0{width}d}" for index in range(steps)]


def chain_spec(name: str, steps: int) -> str:
    """A linear pipeline: the first step returns 0, every other one returns the previous step's result."""
    names = step_names(steps)
    lines = [f"name: {name}", "steps:"]
    lines.append(
        f"  - {{name: {names[0]}, type: function, function: 'bench_noop:identity', arguments: {{value: 0}}}}"
    )
    for previous, current in zip(names, names[1:], strict=False):
        lines.append(
            f"  - {{name: {current}, type: function, function: 'bench_noop:identity', "
            f"arguments: {{value: {{step: {previous}, output: result}}}}}}"
        )
    return "\n".join(lines) + "\n"


def chain_dag(steps: int) -> str:
    return f"bench_selective_chain_{steps}"


def write_dags_folder(folder: Path, sweep: list[int]) -> None:
    folder.mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlpipe_pipelines.py", folder)
    (folder / "bench_noop.py").write_text(NOOP_MODULE)
    for steps in sweep:
        (folder / f"{chain_dag(steps)}.pipeline.yaml").write_text(chain_spec(chain_dag(steps), steps))
    (folder / f"{ONE_STEP}.pipeline.yaml").write_text(chain_spec(ONE_STEP, 1))


class Api(RestCalls):
    """The REST API v2 and the plugin's endpoint; a refused call ends the benchmark."""

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.call(method, path, body)
        if status >= 300:
            raise BenchError(f"{method} {path} -> {status}: {payload}")
        return payload


def wait_for_dags(api: Api, servers: AirflowServers, dag_ids: Iterable[str], timeout: float = 180) -> None:
    """A DAG can be triggered only once the dag-processor has parsed and serialized it."""
    deadline = time.monotonic() + timeout
    for dag_id in dag_ids:
        while api.call("GET", f"/api/v2/dags/{dag_id}")[0] != 200:
            servers.check_alive()
            if time.monotonic() > deadline:
                errors = api.call("GET", "/api/v2/importErrors")[1]
                raise BenchError(f"DAG {dag_id} was not parsed in {timeout:.0f} s; import errors: {errors}")
            time.sleep(0.5)


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds(start: str | None, end: str | None) -> float:
    begin, finish = parse_time(start), parse_time(end)
    return (finish - begin).total_seconds() if begin and finish else float("nan")


@dataclass
class Measured:
    """One finished run: the wall time seen by the client and where the run's own time went."""

    dag_id: str
    run_id: str
    wall: float  # trigger request sent -> a poll sees the run finished
    request: float  # the trigger request itself (the selective endpoint plans and records reuse here)
    run: float  # the run's start_date -> end_date (set by the scheduler)
    queued: float  # queued_at -> start_date: the run waits for a scheduler loop to start it
    scheduler: float  # start_date -> first task queued, between tasks, last task end -> run end
    task_start: float  # task queued -> task start_date (executor, task process start)
    task_body: float  # start_date -> end_date of the tasks that ran
    tasks: list[dict[str, Any]]
    step: float = float("nan")  # the last step's own timings.total_s (in its task body): see step_time


def breakdown(run: dict[str, Any], tasks: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Split start_date -> end_date of a run whose executed tasks ran one after another.

    Reused steps (try 0) never ran, so only the executed tasks count; the run's outcome task, an
    EmptyOperator, is finished by the scheduler itself (never queued): its time is scheduling. The
    three parts add up to the run's start_date -> end_date exactly.
    """
    executed = sorted(
        (ti for ti in tasks if ti["try_number"] > 0 and ti["queued_when"] is not None),
        key=lambda ti: ti["start_date"],
    )
    scheduler = task_start = body = 0.0
    previous_end = run["start_date"]
    for ti in executed:
        scheduler += seconds(previous_end, ti["queued_when"])
        task_start += seconds(ti["queued_when"], ti["start_date"])
        body += seconds(ti["start_date"], ti["end_date"])
        previous_end = ti["end_date"]
    scheduler += seconds(previous_end, run["end_date"])
    return scheduler, task_start, body


def wait_finished(
    api: Api,
    servers: AirflowServers,
    dag_id: str,
    run_id: str,
    started: float,
    answered: float,
    poll: float,
    timeout: float,
) -> Measured:
    """Poll the run until it finishes; ``started`` and ``answered`` frame its trigger request."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    while True:
        run = api.ok("GET", path)
        if run["state"] in FINISHED:
            wall = time.perf_counter() - started
            break
        if time.perf_counter() - started > timeout:
            raise BenchError(f"run {run_id} of {dag_id} still {run['state']} after {timeout:.0f} s")
        servers.check_alive()
        time.sleep(poll)
    tasks = api.ok("GET", f"{path}/taskInstances?limit=1000")["task_instances"]
    if run["state"] != "success":
        failed = {ti["task_id"]: ti["state"] for ti in tasks if ti["state"] != "success"}
        raise BenchError(f"run {run_id} of {dag_id} ended {run['state']}; tasks not successful: {failed}")
    scheduler, task_start, body = breakdown(run, tasks)
    return Measured(
        dag_id,
        run_id,
        wall,
        answered - started,
        seconds(run["start_date"], run["end_date"]),
        seconds(run["queued_at"], run["start_date"]),
        scheduler,
        task_start,
        body,
        tasks,
    )


def full_run(api: Api, servers: AirflowServers, dag_id: str, poll: float, timeout: float) -> Measured:
    started = time.perf_counter()
    run = api.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}})
    answered = time.perf_counter()
    return wait_finished(api, servers, dag_id, run["dag_run_id"], started, answered, poll, timeout)


def selective_run(
    api: Api, servers: AirflowServers, dag_id: str, last: str, source: str, poll: float, timeout: float
) -> Measured:
    started = time.perf_counter()
    run = api.ok(
        "POST",
        f"/mlpipe/api/v1/pipelines/{dag_id}/selectiveRuns",
        {"selected_steps": [last], "source_run_id": source},
    )
    answered = time.perf_counter()
    return wait_finished(api, servers, dag_id, run["run_id"], started, answered, poll, timeout)


def check_selective(measured: Measured, steps: list[str], source: str) -> None:
    """The unselected steps were recorded as done from ``source`` without a task process; the last ran."""
    by_name = {ti["task_id"]: ti for ti in measured.tasks}
    problems = []
    for name in steps[:-1]:
        ti = by_name.get(name, {})
        got = (ti.get("state"), ti.get("try_number"), ti.get("note"))
        if got != ("success", 0, f"reused from run {source}"):
            problems.append(f"{name}: state, try, note = {got}")
    last = by_name.get(steps[-1], {})
    if (last.get("state"), last.get("try_number")) != ("success", 1):
        problems.append(f"{steps[-1]} (selected): state, try = {last.get('state')}, {last.get('try_number')}")
    if problems:
        raise BenchError(f"selective run {measured.run_id} is wrong:\n  " + "\n  ".join(problems))


# The table's columns: a label and how to read the figure from a measured run.
COLUMNS: list[tuple[str, Callable[[Measured], float]]] = [
    ("wall", lambda m: m.wall),
    ("request", lambda m: m.request),
    ("start->end", lambda m: m.run),
    ("queued", lambda m: m.queued),
    ("scheduling", lambda m: m.scheduler),
    ("task start", lambda m: m.task_start),
    ("task body", lambda m: m.task_body),
    ("last step", lambda m: m.step),
]
LABEL = 28


# Pair i starts its runs at the fraction (i x PHASE_STEP) mod 1 of a second (a golden-ratio
# sequence: any number of pairs covers the second evenly).
PHASE_STEP = 0.6180339887


def wait_for_phase(phase: float) -> None:
    """Sleep until the clock's fraction of a second is ``phase`` (0 <= phase < 1) next."""
    time.sleep((phase - time.time()) % 1.0)


def median_of(runs: list[Measured], field: Callable[[Measured], float]) -> float:
    return statistics.median(field(m) for m in runs)


# The measures the goal is about: wall and start->end.
GOAL_COLUMNS = (COLUMNS[0], COLUMNS[2])


def ratios(results: dict[str, list[Measured]], kind: str = "selective") -> dict[str, float]:
    """``kind`` / one-step, medians, on the goal's measures."""
    return {
        name: median_of(results[kind], field) / median_of(results["one"], field)
        for name, field in GOAL_COLUMNS
    }


def report(results: dict[str, list[Measured]], steps: int, warm_up: Measured, database: str) -> None:
    print(
        f"\n{steps}-step chain of no-op function steps, LocalExecutor, {DATABASES[database]}; runs: "
        f"{len(results['full'])} full, {len(results['selective'])} selective, {len(results['one'])} one-step; seconds"
    )
    print(f"{'':<{LABEL}}" + "".join(f"{name:>14}" for name, _ in COLUMNS))
    print(f"{'':<{LABEL}}" + "  median   min" * len(COLUMNS))
    kinds = {
        "full": f"full, {steps} steps",
        "selective": f"selective, last ({steps - 1} reused)",
        "one": "one-step pipeline",
    }
    for kind, label in kinds.items():
        figures = "".join(
            f"  {median_of(results[kind], field):6.2f}{min(field(m) for m in results[kind]):6.2f}"
            for _, field in COLUMNS
        )
        print(f"{label:<{LABEL}}{figures}")
    print(
        "wall: trigger request -> a poll sees the run finished; request: the trigger request alone;\n"
        "start->end: the run's own dates; queued: queued_at -> start_date. start->end = scheduling\n"
        "(before, between and after the tasks that ran) + task start (task queued -> its start_date)\n"
        "+ task body (its start_date -> end_date). last step: the last step's own time in its task\n"
        "body (its record's timings.total_s: parameters, fingerprint, the check of reused steps, the\n"
        "call, the output, lineage); the rest of the body is Airflow's (DAG parse, XCom push, state).\n"
        f"Not counted, the first run on the fresh servers (one-step): wall {warm_up.wall:.2f}, "
        f"start->end {warm_up.run:.2f}."
    )
    full = ratios(results, "full")
    for name, ratio in ratios(results).items():
        verdict = "meets" if ratio <= GOAL else "MISSES"
        print(
            f"selective / one-step, {name} (medians): {ratio:.2f}   goal <= {GOAL}: {verdict}"
            f"   (full / one-step: {full[name]:.1f})"
        )


def lingering_workloads(scheduler_log: Path, threshold: float = 2.0) -> str:
    """How many executor workloads outlived their (no-op, ~0.2 s) task by seconds.

    Airflow's task supervisor sometimes notices its task process's exit only at its next heartbeat
    wake-up (about 5 s later; plain PythonOperator tasks do it too). The LocalExecutor worker stays
    busy meanwhile, so when all workers (parallelism 4) linger, the next queued task waits: that is
    the spread of the full runs' "task start" figures.
    """
    durations = [
        float(value)
        for value in re.findall(r"Workload finished.*?duration=([0-9.]+)", scheduler_log.read_text())
    ]
    slow = [value for value in durations if value >= threshold]
    median = f", median {statistics.median(slow):.1f} s" if slow else ""
    return (
        f"executor workloads that took >= {threshold:.0f} s: {len(slow)} of {len(durations)}{median} "
        "(Airflow's supervisor noticing a task's exit late; the executor slot stays busy meanwhile)"
    )


def step_time(api: Api, measured: Measured, step: str) -> float:
    """The step's own time in its task (``timings.total_s`` of its XCom record)."""
    path = (
        f"/api/v2/dags/{measured.dag_id}/dagRuns/{measured.run_id}/taskInstances/{step}"
        "/xcomEntries/return_value?deserialize=true"
    )
    value = api.ok("GET", path).get("value")
    timings = value.get("timings", {}) if isinstance(value, dict) else {}
    return float(timings.get("total_s", float("nan")))


@contextlib.contextmanager
def metadata_database(database: str) -> Iterator[dict[str, str]]:
    """The settings that put Airflow's metadata DB on ``database``: none for SQLite (the servers'
    default), else a new database of the local Postgres, the deployment tests' own, dropped at the end."""
    if database == "sqlite":
        yield {}
        return
    from tests.deployment.cluster import (
        HOST,
        POSTGRES_PORT,
        POSTGRES_USER,
        SQL_ALCHEMY_CONN,
        postgres_database,
    )

    with postgres_database() as name:
        url = SQL_ALCHEMY_CONN.format(user=POSTGRES_USER, host=HOST, port=POSTGRES_PORT, database=name)
        yield {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}


def measure(
    servers: AirflowServers,
    steps: int,
    repeat: int,
    full_runs: int,
    poll: float,
    timeout: float,
    settle: float,
    database: str,
) -> dict[str, float]:
    """Measure one chain length; print its table and return its ratios (see :func:`ratios`)."""
    api = Api(servers.url)
    chain = chain_dag(steps)
    wait_for_dags(api, servers, [chain, ONE_STEP])
    names = step_names(steps)
    # The first task process on fresh servers pays one-off costs (cold imports, seconds):
    # a run of its own, shown but not counted.
    warm_up = full_run(api, servers, ONE_STEP, poll, timeout)
    results: dict[str, list[Measured]] = {"full": [], "selective": [], "one": []}
    for index in range(full_runs):
        full = full_run(api, servers, chain, poll, timeout)
        full.step = step_time(api, full, names[-1])
        results["full"].append(full)
        print(f"full run {index + 1}/{full_runs}: {full.wall:.2f} s", flush=True)
    source = results["full"][-1].run_id

    def selective() -> Measured:
        measured = selective_run(api, servers, chain, names[-1], source, poll, timeout)
        check_selective(measured, names, source)
        measured.step = step_time(api, measured, names[-1])
        return measured

    def one_step() -> Measured:
        measured = full_run(api, servers, ONE_STEP, poll, timeout)
        measured.step = step_time(api, measured, step_names(1)[0])
        return measured

    for index in range(repeat):
        # In turns, so that neither kind always runs first. Executor workers can stay busy ~5 s after
        # their task (see lingering_workloads); right after a full run all of them may be, and the
        # next task would wait for one: every measured run starts after ``settle`` seconds, at the
        # pair's fraction of a second (see the module's docstring).
        order = [("selective", selective), ("one", one_step)]
        phase = (index * PHASE_STEP) % 1.0
        for kind, make in order if index % 2 == 0 else reversed(order):
            time.sleep(settle)
            wait_for_phase(phase)
            results[kind].append(make())
        print(
            f"pair {index + 1}/{repeat}: selective {results['selective'][-1].wall:.2f} s "
            f"({steps - 1} reused, checked), one-step {results['one'][-1].wall:.2f} s",
            flush=True,
        )
    report(results, steps, warm_up, database)
    return ratios(results)


def sweep_summary(by_steps: dict[int, dict[str, float]], database: str) -> None:
    print(
        f"\nselective (last step only) / one-step pipeline, {DATABASES[database]}, medians; "
        f"goal <= {GOAL} on both"
    )
    print(f"{'steps':>6}{'reused':>8}{'wall':>8}{'start->end':>12}")
    for steps, ratio in by_steps.items():
        verdict = "meets" if max(ratio.values()) <= GOAL else "MISSES"
        print(f"{steps:>6}{steps - 1:>8}{ratio['wall']:>8.2f}{ratio['start->end']:>12.2f}   {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, nargs="+", default=[20, 100], help="chain lengths to sweep (each at least 2)"
    )
    parser.add_argument(
        "--repeat", type=int, default=15, help="pairs of runs measured (a selective and a one-step run)"
    )
    parser.add_argument(
        "--full", type=int, default=1, help="full runs of each chain (the last is the source)"
    )
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between polls of a run's state")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a single run may take")
    parser.add_argument(
        "--settle", type=float, default=6, help="seconds to wait before a selective or one-step run"
    )
    parser.add_argument(
        "--database", choices=sorted(DATABASES), default="sqlite", help="Airflow's metadata DB (see above)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME (logs)")
    args = parser.parse_args()
    if min(args.steps) < 2 or args.repeat < 1 or args.full < 1:
        parser.error("--steps must be at least 2, --repeat and --full at least 1")

    home = Path(tempfile.mkdtemp(prefix="mlpipe-bench-selective-"))
    keep = args.keep
    try:
        write_dags_folder(home / "dags", args.steps)
        print(f"starting Airflow in {home} ({DATABASES[args.database]}) ...", flush=True)
        with (
            metadata_database(args.database) as database_env,
            airflow_servers(
                home,
                home / "dags",
                extra_env={**DEPLOYED_PYTHON, **database_env},
                sqlite_wal=args.database == "sqlite",
            ) as servers,
        ):
            try:
                by_steps = {
                    steps: measure(
                        servers,
                        steps,
                        args.repeat,
                        args.full,
                        args.poll,
                        args.timeout,
                        args.settle,
                        args.database,
                    )
                    for steps in args.steps
                }
                sweep_summary(by_steps, args.database)
                print(lingering_workloads(servers.home / "scheduler.log"))
            except BenchError as error:
                keep = True  # the task logs and the DB tell why
                print(f"\nFAILED: {error}\n--- scheduler log (tail) ---\n{servers.log('scheduler')}")
                return 1
    finally:
        if keep:
            print(f"kept {home} (logs{', airflow.db' if args.database == 'sqlite' else ''})")
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
