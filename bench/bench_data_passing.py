"""Moving a large value from one step to the next through the artifact store: speed and peak memory.

A 1 GiB float64 numpy array and a 10-million-row DataFrame (float, int and two string columns) are
written by one process and read by another, each doing exactly what a step does: the writer calls
``save_value`` (what a step's outputs go through), the reader ``load_value`` (what a step's inputs go
through). Through the local store, and through the S3-compatible test server on 127.0.0.1
(``tests/artifacts/s3_server.py``) reached through an Airflow connection.

For each side it prints the time and MB/s of the store call, and the process's peak RSS during that
call (``VmHWM``, reset just before the call) above the interpreter's own RSS before the value existed,
as a multiple of the value's size in memory: the memory a step needs for this artifact.

The floor, measured in the same run on the same file system: ``dd`` writing the same number of bytes
with ``conv=fsync``, plus one SHA-256 pass over them (hashlib). The ratio is floor time / (write +
read time): 100 % means passing the value costs what writing it durably and hashing it once costs.

Asserts nothing about speed. Run: ``python bench/bench_data_passing.py [--mib 1024] [--rows 10000000]
[--no-s3] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
S3_CONN_ID = "mlpipe_bench_s3"
MB = 1e6


# -- one side, in a child process ------------------------------------------------------------------
def _rss() -> int:
    return _status_kib("VmRSS") * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start a new RSS high-water mark (Linux: write 5 to clear_refs), after returning freed memory
    (of malloc and of Arrow's pool: what building the value left behind is not the store's)."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def _make_value(kind: str, mib: int, rows: int) -> Any:
    import numpy

    rng = numpy.random.default_rng(0)
    if kind == "numpy":
        return rng.random(mib * 1024 * 1024 // 8)
    import pandas

    cities = numpy.array(["paris", "london", "tokyo", "lima", "nairobi", "oslo"])
    return pandas.DataFrame(
        {
            "x": rng.random(rows),
            "n": rng.integers(0, 1 << 40, rows),
            "city": pandas.array(cities[rng.integers(0, len(cities), rows)], dtype="str"),
            "user": "user-" + pandas.Series(numpy.arange(rows)).astype("str"),
        }
    )


def _value_bytes(value: Any) -> int:
    if hasattr(value, "memory_usage"):
        return int(value.memory_usage(deep=True).sum())
    return int(value.nbytes)


def side(args: argparse.Namespace) -> None:
    """Run one side (``write`` or ``read``) and print its figures as JSON on the last line."""
    import numpy  # noqa: F401  (imported before the baseline: imports are not the value's memory)
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value, save_value
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    store = store_from_url(args.store)
    if store.url.startswith("s3://"):
        store.s3()  # the client (and the Amazon provider) before the baseline, as in a warm task
    baseline = _rss()
    if args.side == "write":
        value = _make_value(args.kind, args.mib, args.rows)
        _reset_peak()
        started = time.perf_counter()
        ref = save_value(store, value, producer={"pipeline": "bench", "step": "Write", "output": "value"})
        seconds = time.perf_counter() - started
        Path(args.ref).write_text(json.dumps(ref.to_dict()))
    else:
        ref = ArtifactRef.from_dict(json.loads(Path(args.ref).read_text()))
        _reset_peak()
        started = time.perf_counter()
        value = load_value(store, ref)
        seconds = time.perf_counter() - started
    figures = {
        "seconds": seconds,
        "value_bytes": _value_bytes(value),
        "blob_bytes": ref.size,
        "baseline_bytes": baseline,
        "peak_bytes": _status_kib("VmHWM") * 1024,
    }
    print(json.dumps(figures))


def run_side(side_name: str, kind: str, store: str, ref: Path, args: argparse.Namespace, env: dict) -> dict:
    command = [
        sys.executable,
        __file__,
        "--side",
        side_name,
        "--kind",
        kind,
        "--store",
        store,
        "--ref",
        str(ref),
    ]
    command += ["--mib", str(args.mib), "--rows", str(args.rows)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{side_name} side failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the floor ---------------------------------------------------------------------------------------
def floor_seconds(target: Path, size: int) -> tuple[float, float]:
    """(dd with fsync, one hashlib SHA-256 pass) over ``size`` bytes written to ``target``.

    The file is left in place until the store's own run is over: a file deleted just before would
    hand its freed page cache to the store's writes, a head start the floor did not have.
    """
    mib = -(-size // (1024 * 1024))
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fsync", "status=none"],
        check=True,
    )
    dd = time.perf_counter() - started
    hasher = hashlib.sha256()
    buffer = bytearray(8 * 1024 * 1024)
    view = memoryview(buffer)
    started = time.perf_counter()
    with open(target, "rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
    sha = time.perf_counter() - started
    return dd, sha


# -- the run -----------------------------------------------------------------------------------------
def _load_s3_server() -> Any:
    path = REPO / "tests" / "artifacts" / "s3_server.py"
    spec = importlib.util.spec_from_file_location("mlpipe_bench_s3_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(
    store_name: str, store_url: str, kinds: list[str], args: argparse.Namespace, env: dict, work: Path
) -> list:
    rows = []
    for kind in kinds:
        ref = work / f"{store_name}-{kind}.json"
        write = run_side("write", kind, store_url, ref, args, env)
        read = run_side("read", kind, store_url, ref, args, env)
        rows.append((store_name, kind, write, read))
    return rows


def report(rows: list, floor: tuple[float, float], floor_bytes: int) -> None:
    dd, sha = floor
    print(
        f"floor: dd conv=fsync {dd:.2f} s + sha256 {sha:.2f} s = {dd + sha:.2f} s for {floor_bytes / MB:.0f} MB "
        f"({floor_bytes / MB / (dd + sha):.0f} MB/s)"
    )
    header = f"{'store':6} {'value':6} {'side':5} {'value MB':>9} {'blob MB':>8} {'seconds':>8} {'MB/s':>7} {'peak MB':>8} {'peak/value':>10}"
    print(header)
    for store_name, kind, write, read in rows:
        for side_name, figures in (("write", write), ("read", read)):
            value_mb = figures["value_bytes"] / MB
            used = (figures["peak_bytes"] - figures["baseline_bytes"]) / figures["value_bytes"]
            print(
                f"{store_name:6} {kind:6} {side_name:5} {value_mb:9.0f} {figures['blob_bytes'] / MB:8.0f} "
                f"{figures['seconds']:8.2f} {value_mb / figures['seconds']:7.0f} {figures['peak_bytes'] / MB:8.0f} "
                f"{used:10.2f}"
            )
        total = write["seconds"] + read["seconds"]
        ratio = (
            f", {(dd + sha) / total * write['blob_bytes'] / floor_bytes:.0%} of the floor's speed"
            if kind == "numpy"
            else ""
        )
        print(
            f"{store_name:6} {kind:6} write+read {total:.2f} s ({write['blob_bytes'] / MB / total:.0f} MB/s of blob){ratio}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="size of the numpy array in MiB")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the DataFrame")
    parser.add_argument("--no-s3", action="store_true", help="only the local store")
    parser.add_argument("--dir", type=Path, default=None, help="where the store and the floor's file go")
    parser.add_argument("--side", choices=["write", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=["numpy", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args)
        return

    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-data-", dir=args.dir))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "AIRFLOW"))}
    env.update(AIRFLOW_HOME=str(work / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    try:
        print(f"bench_data_passing: {args.mib} MiB numpy array, {args.rows:,}-row DataFrame; in {work}")
        # The .npy blob's size: the array's bytes plus numpy's 128-byte header.
        floor_bytes = args.mib * 1024 * 1024 + 128
        floor = floor_seconds(work / "floor.bin", floor_bytes)
        rows = measure("local", str(work / "store"), ["numpy", "pandas"], args, env, work)
        (work / "floor.bin").unlink()
        shutil.rmtree(work / "store", ignore_errors=True)
        if not args.no_s3:
            server = _load_s3_server()
            with server.start_s3_server() as endpoint:
                connection = {
                    "conn_type": "aws",
                    "login": "bench",
                    "password": "bench",
                    "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
                }
                s3_env = {
                    **env,
                    f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(connection),
                    "AIRFLOW__MLPIPE__AWS_CONN_ID": S3_CONN_ID,
                    "NO_PROXY": "127.0.0.1",
                }
                bucket = "mlpipe-bench"
                subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        "import sys; from airflow_provider_mlpipe.artifacts.aws import s3_client; "
                        "s3_client().create_bucket(Bucket=sys.argv[1])",
                        bucket,
                    ],
                    env=s3_env,
                    check=True,
                    capture_output=True,
                )
                rows += measure("s3", f"s3://{bucket}/bench", ["numpy", "pandas"], args, s3_env, work)
        report(rows, floor, floor_bytes)
        print(
            "(peak MB: the side's RSS high-water mark (VmHWM) during the store call; peak/value: that "
            "peak above the interpreter's RSS before the value existed, over the value's size in "
            "memory. s3: the test server is moto, serving one request at a time.)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
