"""A step's own overhead beyond Airflow's task start, for a no-op step.

Runs, in process on a throw-away SQLite DB, a chain of N no-op function steps (each takes the previous
step's output, so inputs are resolved from the artifact store and outputs written to it) and the
same chain of plain ``PythonOperator`` tasks passing the value by XCom. Prints both wall times per
task and, from the step records, the provider's own work per step (resolving parameters, loading
inputs, writing outputs and the record), the figure with the goal: under 50 ms.
Run: ``python bench/bench_step_overhead.py [--steps 20] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import throwaway_home

HOME = throwaway_home()


def noop(value: int = 0) -> int:
    return value + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import ensure_database, run_dag_locally
    from airflow_provider_mlpipe.model import FunctionStep, Pipeline

    ensure_database()

    def mlpipe_dag(index: int):
        steps = [FunctionStep("s00", function=noop, arguments={"value": 0})]
        for position in range(1, args.steps):
            steps.append(
                FunctionStep(
                    f"s{position:02d}", function=noop, arguments={"value": steps[-1].output("result")}
                )
            )
        return build_dag(Pipeline(f"bench_mlpipe_{index}", [], steps))

    def plain_dag(index: int):
        # Native rendering: the XCom pulled by the template stays an int, as the mlpipe step's input does.
        with DAG(f"bench_plain_{index}", schedule=None, render_template_as_native_obj=True) as dag:
            previous = PythonOperator(task_id="s00", python_callable=noop, op_kwargs={"value": 0})
            for position in range(1, args.steps):
                task = PythonOperator(
                    task_id=f"s{position:02d}",
                    python_callable=noop,
                    op_kwargs={"value": f"{{{{ ti.xcom_pull(task_ids='s{position - 1:02d}') }}}}"},
                )
                previous >> task
                previous = task
        return dag

    def per_task(build, index: int) -> tuple[float, list[float], list[float]]:
        dag = build(index)
        started = time.perf_counter()
        result = run_dag_locally(dag)
        elapsed = time.perf_counter() - started
        assert result.state == "success", result
        durations = [task.duration for task in result.tasks if task.duration is not None]
        # The step record says how much of the task was the provider's own work.
        provider = [
            task.return_value["timings"]["provider_s"]
            for task in result.tasks
            if isinstance(task.return_value, dict) and "timings" in task.return_value
        ]
        return elapsed / args.steps, durations, provider

    plain, mlpipe, plain_durations, mlpipe_durations, provider = [], [], [], [], []
    for index in range(args.repeat):
        wall, durations, _ = per_task(plain_dag, index)
        plain.append(wall)
        plain_durations += durations
        wall, durations, own = per_task(mlpipe_dag, index)
        mlpipe.append(wall)
        mlpipe_durations += durations
        provider += own

    plain_ms = statistics.median(plain) * 1000
    mlpipe_ms = statistics.median(mlpipe) * 1000
    print(f"chain of {args.steps} no-op tasks, dag.test(), median of {args.repeat} runs")
    print(
        f"PythonOperator: {plain_ms:.1f} ms per task (task duration median {statistics.median(plain_durations) * 1000:.1f} ms)"
    )
    print(
        f"mlpipe FunctionStep: {mlpipe_ms:.1f} ms per task (task duration median {statistics.median(mlpipe_durations) * 1000:.1f} ms)"
    )
    print(
        f"provider's own work per step (parameters, inputs from the store, outputs, record; from the "
        f"step records): median {statistics.median(provider) * 1000:.1f} ms, max {max(provider) * 1000:.1f} ms "
        "(goal < 50 ms)"
    )
    print(f"difference of wall time per task, mlpipe - PythonOperator: {mlpipe_ms - plain_ms:.1f} ms")


if __name__ == "__main__":
    main()
