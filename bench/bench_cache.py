"""Step caching and fingerprints: what a cache hit costs, and what fingerprinting a large input costs.

Runs in process on a throw-away SQLite DB and a local artifact store (figures only, nothing asserted):

1. A cache hit against a no-op step of the same run: a pipeline of a no-op function step beside a
   cached step whose entry exists (filled by a first run), run ``--repeat`` times; each task's duration
   as Airflow records it (start to end of the task instance), median. Goal: the hit within 50 ms of
   the no-op.
2. The fingerprint of a step whose input is a 1 GiB artifact written by the step before it: the digest
   comes from the producer's record, so the size does not matter. Goal: under 10 ms. Then the same
   1 GiB as a literal input file named in the spec: hashed once (first run), then remembered by the
   file's identity (later runs).

Run: ``python bench/bench_cache.py [--repeat 5] [--size-mib 1024]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _common import throwaway_home

HOME = throwaway_home()


def noop(value: int = 0) -> int:
    return value + 1


def big_file(size_mib: int) -> Path:
    """A file of ``size_mib`` MiB of non-repeating bytes (returned as a file artifact)."""
    path = HOME / "big.bin"
    if not path.exists():
        block = os.urandom(1024 * 1024)
        with open(path, "wb") as output:
            for index in range(size_mib):
                output.write(index.to_bytes(8, "little") + block[8:])
    return path


def read_size(data: Path) -> int:
    return next(Path(data).iterdir()).stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()

    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.fingerprint import fingerprint_of
    from airflow_provider_mlpipe.local_runner import ensure_database, run_dag_locally
    from airflow_provider_mlpipe.model import (
        CacheConfig,
        FunctionStep,
        Pipeline,
        ProcessingInput,
        ProcessingStep,
    )

    ensure_database()

    # 1. A cache hit against a no-op step.
    plain = FunctionStep("NoOp", function=noop, arguments={"value": 0})
    cached = FunctionStep("Cached", function=noop, arguments={"value": 1}, cache_config=CacheConfig())
    dag = build_dag(Pipeline("bench_cache_hit", [], [plain, cached]))
    run_dag_locally(dag)  # fills the cache
    noop_ms, hit_ms, lookup_ms = [], [], []
    for _ in range(args.repeat):
        result = run_dag_locally(dag)
        assert result.task("Cached").return_value["cache"]["hit"]
        noop_ms.append((result.task("NoOp").duration or 0) * 1000)
        hit_ms.append((result.task("Cached").duration or 0) * 1000)
        lookup_ms.append(result.task("Cached").return_value["timings"]["total_s"] * 1000)
    print(f"cache hit vs no-op step, {args.repeat} runs (task instance durations, median):")
    print(f"  no-op step      {statistics.median(noop_ms):7.1f} ms")
    print(
        f"  cache hit       {statistics.median(hit_ms):7.1f} ms  (difference {statistics.median(hit_ms) - statistics.median(noop_ms):+.1f} ms)"
    )
    print(f"  hit inside the step (fingerprint, lookup, record): {statistics.median(lookup_ms):.1f} ms")

    # 2. The fingerprint of a step with a 1 GiB input artifact, and with a 1 GiB literal input file.
    source = big_file(args.size_mib)
    produce = FunctionStep(
        "Produce", function="bench_cache_steps.py:produce", arguments={"path": str(source)}
    )
    consume = FunctionStep(
        "Consume",
        function="bench_cache_steps.py:consume",
        arguments={"data": produce.output("result")},
        cache_config=CacheConfig(),
    )
    folder = HOME / "dags"
    (folder / "bench_cache_steps.py").write_text(
        "from pathlib import Path\n\ndef produce(path):\n    return Path(path)\n\n"
        "def consume(data):\n    return 1\n"
    )
    (folder / "count.py").write_text("import os\nprint(os.listdir(os.environ['MLPIPE_INPUT_BIG']))\n")
    literal = ProcessingStep(
        "Literal", code="count.py", inputs=[ProcessingInput("big", str(source))], cache_config=CacheConfig()
    )
    pipeline = Pipeline("bench_cache_fingerprint", [], [produce, consume, literal], base_dir=folder)
    started = time.perf_counter()
    dag = build_dag(pipeline)  # the DAG's sources manifest hashes the literal file: the first time only
    first_build = time.perf_counter() - started
    started = time.perf_counter()
    build_dag(pipeline)
    second_build = time.perf_counter() - started
    print(f"\nbuilding the DAG (its sources manifest digests the {args.size_mib} MiB literal input file):")
    print(
        f"  first build {first_build * 1000:8.1f} ms (hashes the file)   next build {second_build * 1000:6.1f} ms (remembered)"
    )
    print(
        f"\nfingerprints with a {args.size_mib} MiB input, inside the task (upstream record pulled from XCom included):"
    )
    for attempt in ("first run", "second run", "third run"):
        result = run_dag_locally(dag)
        assert result.state == "success", [(task.task_id, task.state) for task in result.tasks]
        artifact = result.task("Consume").return_value["timings"]["fingerprint_s"] * 1000
        file = result.task("Literal").return_value["timings"]["fingerprint_s"] * 1000
        print(f"  {attempt:10s}  input artifact {artifact:7.2f} ms   literal input file {file:8.2f} ms")
    record = result.task("Consume").return_value
    [item] = record["inputs"].values()
    started = time.perf_counter()
    for _ in range(1000):
        fingerprint_of(record["digest"], record["parameters"], record["execution"], record["inputs"])
    print(
        f"  the fingerprint proper, from the recorded digest of the {item['size'] / 2**20:.0f} MiB artifact: "
        f"{(time.perf_counter() - started):.3f} ms per fingerprint (1000 computed)"
    )


if __name__ == "__main__":
    main()
