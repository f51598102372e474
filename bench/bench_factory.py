"""DAG factory speed: 100 specs of 20 steps each.

Prints: seconds to build all DAGs once Airflow is imported (goal < 1 s), and seconds to build one
DAG out of the 100 when Airflow's parsing context names it (what a worker does before a task).
Run: ``python bench/bench_factory.py [--pipelines 100] [--steps 20] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_specs import write_specs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    write_specs(folder, args.pipelines, args.steps)
    os.environ.setdefault("AIRFLOW_HOME", str(folder / "airflow-home"))

    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    from airflow_provider_mlpipe.factory import load_pipeline_dags

    print(f"import airflow.sdk + provider: {time.perf_counter() - started:.3f} s")

    all_times, one_times = [], []
    for _ in range(args.repeat):
        os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
        started = time.perf_counter()
        dags = load_pipeline_dags(folder=folder)
        all_times.append(time.perf_counter() - started)
        assert len(dags) == args.pipelines, f"built {len(dags)} DAGs"
        tasks = sum(len(dag.tasks) for dag in dags.values())

        os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = f"bench_{args.pipelines // 2:03d}"
        started = time.perf_counter()
        one = load_pipeline_dags(folder=folder)
        one_times.append(time.perf_counter() - started)
        assert list(one) == [f"bench_{args.pipelines // 2:03d}"]

    print(f"specs: {args.pipelines} x {args.steps} steps = {tasks} tasks")
    print(
        f"build all DAGs: median {statistics.median(all_times):.3f} s, min {min(all_times):.3f} s (goal < 1 s)"
    )
    print(
        f"build one DAG with the parsing context: median {statistics.median(one_times) * 1000:.1f} ms, "
        f"min {min(one_times) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
