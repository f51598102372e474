"""Executions at once against one after the other, on the Celery deployment of the tests.

Starts the deployment of ``tests/deployment/cluster.py`` (Postgres, Redis, two Celery workers of
concurrency 2, api-server, scheduler, dag-processor, the S3 test server; all on 127.0.0.1), then
with the ``grid`` pipeline of the deployment tests (a training script and a registration):

1. ``--runs`` executions started at once, each from its own process (the public Python API, as the
   README's parallel-launch example), timed from the signal to start (every process ready: imports
   done, session made) to the last one finished;
2. the same number started one after the other, each waited for before the next starts.

Prints both wall times and their ratio; asserts nothing about speed (it exits non-zero if a run
fails). Needs Postgres and Redis on 127.0.0.1 and the celery extra (without them it says so and
exits 0).

Run: ``.venv/bin/python bench/bench_parallel.py [--runs 20]`` (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.deployment, shared with the deployment tests

from tests.deployment.cluster import celery_cluster, describe, unavailable_services  # noqa: E402
from tests.deployment.conftest import deployment_dags, wait_for_dags  # noqa: E402
from tests.deployment.launch import start_at_once  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    missing = unavailable_services()
    if missing:
        # As the deployment tests do: say why, and do not fail `make bench` where there is none.
        print("bench_parallel skipped, no Celery deployment: " + "; ".join(missing))
        return 0

    from airflow_provider_mlpipe import Pipeline
    from airflow_provider_mlpipe.client import AirflowSession

    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as folder:
        home = Path(folder)
        (home / "home").mkdir()
        started_at = time.monotonic()
        with celery_cluster(home / "home", deployment_dags(home / "dags")) as cluster:
            wait_for_dags(cluster, ("grid",))
            print(f"deployment up in {time.monotonic() - started_at:.0f} s: {describe(cluster)}")
            spec = home / "dags" / "grid.pipeline.yaml"
            pipeline, session = Pipeline.from_yaml(spec), AirflowSession(cluster.url)
            # A first run, untimed: the workers import everything once.
            assert pipeline.start(session=session).wait(poll=args.poll, timeout=600).status == "success"

            jobs = [{"name": f"p{n}", "parameters": {"Depth": n + 1}} for n in range(args.runs)]
            signals = home / "signals"
            signals.mkdir()
            started = start_at_once(cluster, spec, jobs, signals)
            # From the signal to start (the processes have imported everything and made their sessions
            # by then: 20 Python processes starting on 2 cores take a minute, which is not Airflow's).
            go = (signals / "go").stat().st_mtime
            launched = time.time() - go
            for run_id in started.values():
                status = pipeline.execution(run_id, session=session).wait(poll=args.poll, timeout=1200).status
                if status != "success":
                    print(f"run {run_id} ended {status}:\n{cluster.logs()}", file=sys.stderr)
                    return 1
            at_once = time.time() - go

            begin = time.monotonic()
            for n in range(args.runs):
                execution = pipeline.start(parameters={"Depth": 100 + n}, session=session)
                status = execution.wait(poll=args.poll, timeout=600).status
                if status != "success":
                    print(f"run {execution.execution_id} ended {status}", file=sys.stderr)
                    return 1
            one_by_one = time.monotonic() - begin

    print(f"{args.runs} executions of 'grid' (2 tasks each), 2 Celery workers x concurrency 2, 2 cores")
    print(
        f"  at once, from {args.runs} processes: {at_once:7.1f} s  (all start calls returned after {launched:.1f} s)"
    )
    print(f"  one after the other, each waited:  {one_by_one:7.1f} s")
    print(f"  ratio one-by-one / at-once:        {one_by_one / at_once:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
