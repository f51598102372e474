"""DAG factory speed: how long a DAG file parse takes to build many pipelines, beside its anchors.

Two parts, each printing figures and asserting nothing about speed:

1. This loader alone, in this process: 100 specs of 20 steps each (processing, function, condition
   and rejoin steps: ``make_specs.py``), all of them, then one out of the 100 with Airflow's parsing
   context (what a worker does before it runs a task).
2. Side by side, each variant in a fresh process, alternating, ``--rounds`` rounds: the same 100
   pipelines of 20 chained no-op steps (each step reads the previous step's result) built by
   - this loader from ``*.pipeline.yaml`` specs (``load_pipeline_dags``): as the DAG processor's
     parses of unchanged specs (the models and built DAGs from the parse cache, the steps' code
     digests computed again), and with the cache off (every spec read, every DAG built),
   - dag-factory from YAML files of ``PythonOperator`` tasks (the optional ``bench`` extra:
     ``pip install -e '.[bench]'``; skipped, saying so, when it is not installed),
   - a plain Python loop of ``PythonOperator``\\ s, with no YAML at all;
   and, as a floor for a parse that reads every spec, libyaml's C composer alone over the same specs.
   Each child measures the build after its imports (Airflow, and the builder's module) and, as
   Airflow's DAG processor does before it forks a parsing process, ``gc.freeze()``, in wall
   time and in CPU time (CPU time is steadier on a busy machine); the ratios are this loader's
   median over each anchor's median. Goal: at most 0.3x dag-factory and at most 1.3x the plain loop.

Run: ``python bench/bench_factory.py [--pipelines 100] [--steps 20] [--repeat 5] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from make_specs import write_specs  # noqa: E402

# "mlpipe": a parse of unchanged specs, as the DAG processor makes every 30 s and a worker before each
# task (the spec models and built DAGs come from the parse cache, warmed before the rounds, once the
# steps' code digests are found unchanged); "mlpipe-uncached": the first parse after every spec changed
# (``[mlpipe] parse_cache = off``: read the YAML, build the model, build the DAG)
VARIANTS = ("mlpipe", "mlpipe-uncached", "dag-factory", "plain")
NOOP_MODULE = "def identity(value=0):\n    return value\n"
PULL = "{{{{ ti.xcom_pull(task_ids='{previous}') }}}}"


def step_name(position: int) -> str:
    return f"s{position:02d}"


def write_chains(folder: Path, pipelines: int, steps: int) -> None:
    """The same chains as mlpipe specs and as dag-factory YAML, and the module with the no-op."""
    (folder / "mlpipe").mkdir(parents=True)
    (folder / "dagfactory").mkdir()
    (folder / "bench_noop.py").write_text(NOOP_MODULE)
    for index in range(pipelines):
        name = f"chain_{index:03d}"
        spec = [f"name: {name}", "steps:"]
        spec.append("  - {name: s00, type: function, function: 'bench_noop:identity', arguments: {value: 0}}")
        for position in range(1, steps):
            spec.append(
                f"  - {{name: {step_name(position)}, type: function, function: 'bench_noop:identity', "
                f"arguments: {{value: {{step: {step_name(position - 1)}, output: result}}}}}}"
            )
        (folder / "mlpipe" / f"{name}.pipeline.yaml").write_text("\n".join(spec) + "\n")
        tasks = []
        for position in range(steps):
            task = [
                f"    - task_id: {step_name(position)}",
                "      operator: airflow.providers.standard.operators.python.PythonOperator",
                "      python_callable: bench_noop.identity",
            ]
            if position:
                previous = step_name(position - 1)
                task += [
                    f'      op_kwargs: {{value: "{PULL.format(previous=previous)}"}}',
                    f"      dependencies: [{previous}]",
                ]
            tasks += task
        config = [f"{name}:", "  schedule: null", "  catchup: false", "  tasks:", *tasks]
        (folder / "dagfactory" / f"{name}.yml").write_text("\n".join(config) + "\n")


def child(variant: str, folder: Path, pipelines: int, steps: int) -> dict[str, Any]:
    """Build the DAGs of ``variant`` in this (fresh) process; return the figures."""
    sys.path.insert(0, str(folder))  # as Airflow puts the dags folder on sys.path
    started = time.perf_counter()
    from airflow.sdk import DAG

    if variant.startswith("mlpipe"):
        from airflow_provider_mlpipe.factory import load_pipeline_dags

        def build() -> list[Any]:
            return list(load_pipeline_dags(folder=folder / "mlpipe").values())
    elif variant == "dag-factory":
        from dagfactory import load_yaml_dags

        def build() -> list[Any]:
            namespace: dict[str, Any] = {}
            load_yaml_dags(globals_dict=namespace, dags_folder=str(folder / "dagfactory"), suffix=[".yml"])
            return [value for value in namespace.values() if isinstance(value, DAG)]
    elif variant == "libyaml":
        import yaml

        def build() -> list[Any]:
            # A floor, not a loader: libyaml's C composer alone over the same specs. Its nodes carry
            # the line numbers that errors need; this loader builds on them.
            specs = sorted((folder / "mlpipe").glob("*.pipeline.yaml"))
            return [yaml.compose(path.read_text(), Loader=yaml.CSafeLoader) for path in specs]
    else:
        from airflow.providers.standard.operators.python import PythonOperator
        from bench_noop import identity

        def build() -> list[Any]:
            dags = []
            for index in range(pipelines):
                with DAG(f"plain_{index:03d}", schedule=None, catchup=False) as dag:
                    previous = None
                    for position in range(steps):
                        kwargs = {"op_kwargs": {"value": PULL.format(previous=step_name(position - 1))}}
                        task = PythonOperator(
                            task_id=step_name(position),
                            python_callable=identity,
                            **(kwargs if position else {}),
                        )
                        if previous is not None:
                            previous >> task
                        previous = task
                dags.append(dag)
            return dags

    imported = time.perf_counter() - started
    # As Airflow's DAG processor does before it forks the process that parses a DAG file: what is
    # imported so far is moved out of the garbage collector's sight, so that a collection during the
    # build does not walk all of Airflow's own objects again (that cost 0.1 s of a 0.6 s build here).
    gc.freeze()
    wall, cpu = time.perf_counter(), time.process_time()
    dags = build()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "variant": variant,
        "dags": len(dags),
        "tasks": sum(len(getattr(dag, "tasks", ())) for dag in dags),
        "import_s": imported,
        "build_s": wall,
        "build_cpu_s": cpu,
    }


def side_by_side(pipelines: int, steps: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mlpipe-bench-chains-"))
    write_chains(folder, pipelines, steps)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(folder / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    variants = list(VARIANTS)
    try:
        import dagfactory  # noqa: F401
    except ImportError:
        print("dag-factory is not installed (pip install -e '.[bench]'): compared with the plain loop only")
        variants.remove("dag-factory")
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in variants}

    def run_child(variant: str) -> dict[str, Any]:
        child_env = {**env, "AIRFLOW__MLPIPE__PARSE_CACHE": "off"} if variant == "mlpipe-uncached" else env
        done = subprocess.run(
            [sys.executable, __file__, "--child", variant, str(folder), str(pipelines), str(steps)],
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{done.stdout}\n{done.stderr}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if figures["dags"] != pipelines:
            raise SystemExit(f"{variant} built {figures['dags']} DAGs, not {pipelines}")
        return figures

    first = run_child("mlpipe")  # the first parse fills the parse cache
    print(f"mlpipe, first parse filling the parse cache: {first['build_cpu_s']:.3f} s CPU")
    for round_index in range(rounds):
        order = variants[round_index % len(variants) :] + variants[: round_index % len(variants)]
        for variant in order:
            results[variant].append(run_child(variant))
    print(
        f"\n{pipelines} pipelines of {steps} chained no-op steps, {rounds} rounds, each in a fresh process:"
    )
    print(f"{'variant':<16} {'tasks':>6} {'import s':>9} {'build s (median, min)':>22} {'build CPU s':>12}")
    medians = {}
    for variant, runs in results.items():
        walls = [run["build_s"] for run in runs]
        cpus = [run["build_cpu_s"] for run in runs]
        medians[variant] = (statistics.median(walls), statistics.median(cpus))
        print(
            f"{variant:<16} {runs[0]['tasks']:>6} {statistics.median(run['import_s'] for run in runs):>9.3f} "
            f"{statistics.median(walls):>12.3f} {min(walls):>9.3f} {statistics.median(cpus):>12.3f}"
        )
    for mine in ("mlpipe", "mlpipe-uncached"):
        for anchor, goal in (("dag-factory", 0.3), ("plain", 1.3)):
            if anchor in medians:
                print(
                    f"{mine} / {anchor}: {medians[mine][0] / medians[anchor][0]:.2f}x wall, "
                    f"{medians[mine][1] / medians[anchor][1]:.2f}x CPU (goal <= {goal}x)"
                )
    # What a parse that reads every spec cannot go below: composing the YAML, before any model or
    # task. Against 1.3x the plain loop, whose tasks any loader has Airflow construct too.
    floor = statistics.median(run_child("libyaml")["build_cpu_s"] for _ in range(rounds))
    plain_cpu = medians["plain"][1]
    print(
        f"floor of a parse that reads every spec: libyaml composing the {pipelines} specs alone, "
        f"{floor:.3f} s CPU (median of {rounds}) = {floor / plain_cpu:.2f}x the plain loop; 1.3x the "
        f"plain loop leaves {0.3 * plain_cpu:.3f} s for all that a loader adds to Airflow's tasks"
    )


def this_loader(pipelines: int, steps: int, repeat: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    write_specs(folder, pipelines, steps)
    os.environ.setdefault("AIRFLOW_HOME", str(folder / "airflow-home"))
    os.environ["AIRFLOW__MLPIPE__PARSE_CACHE"] = str(folder / "parse-cache")  # never the user's own

    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    from airflow_provider_mlpipe.factory import load_pipeline_dags

    print(f"import airflow.sdk + provider: {time.perf_counter() - started:.3f} s")

    all_times, one_times = [], []
    for _ in range(repeat):
        os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)
        started = time.perf_counter()
        dags = load_pipeline_dags(folder=folder)
        all_times.append(time.perf_counter() - started)
        assert len(dags) == pipelines, f"built {len(dags)} DAGs"
        tasks = sum(len(dag.tasks) for dag in dags.values())

        os.environ["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = f"bench_{pipelines // 2:03d}"
        started = time.perf_counter()
        one = load_pipeline_dags(folder=folder)
        one_times.append(time.perf_counter() - started)
        assert list(one) == [f"bench_{pipelines // 2:03d}"]
    os.environ.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)

    print(f"specs: {pipelines} x {steps} steps = {tasks} tasks (each DAG also has its outcome task)")
    later = all_times[1:] or all_times
    print(
        f"build all DAGs: first {all_times[0]:.3f} s (reading every spec, filling the parse cache); "
        f"then median {statistics.median(later):.3f} s, min {min(later):.3f} s (from the cache)"
    )
    print(
        f"build one DAG with the parsing context: median {statistics.median(one_times) * 1000:.1f} ms, "
        f"min {min(one_times) * 1000:.1f} ms"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, folder, pipelines, steps = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(child(variant, folder, pipelines, steps)))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5, help="builds of part 1 (in this process)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of part 2 (fresh processes)")
    parser.add_argument("--only", choices=("loader", "side-by-side"), help="run one part only")
    args = parser.parse_args()
    if args.only != "side-by-side":
        this_loader(args.pipelines, args.steps, args.repeat)
    if args.only != "loader":
        side_by_side(args.pipelines, args.steps, args.rounds)


if __name__ == "__main__":
    main()
