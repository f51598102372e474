"""Start executions from many processes at once through the public Python API, and read what they
made in the S3 store; shared by the deployment tests and ``bench/bench_parallel.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.deployment.cluster import CeleryCluster

# One starting process: it gets ready (imports, its own session), says so, waits for the signal that
# every process is ready, then starts its execution, so that the starts really come at once. As the
# README's parallel-launch example: Pipeline.from_yaml(...).start(parameters=..., session=...).
STARTER = """
    import json, sys, time
    from pathlib import Path
    from airflow_provider_mlpipe import Pipeline, SelectiveExecutionConfig
    from airflow_provider_mlpipe.client import AirflowSession

    url, spec, folder, job = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
    pipeline = Pipeline.from_yaml(spec)
    session = AirflowSession(url)
    (folder / f"ready-{job['name']}").touch()
    while not (folder / "go").exists():
        time.sleep(0.01)
    config = None
    if job.get("select"):
        config = SelectiveExecutionConfig(job["select"], source_run_id=job["reference"])
    execution = pipeline.start(parameters=job["parameters"], selective_execution_config=config, session=session)
    print(json.dumps({"name": job["name"], "run_id": execution.execution_id}))
    """


def start_at_once(
    cluster: CeleryCluster, spec: Path, jobs: list[dict[str, Any]], folder: Path, timeout: float = 300
) -> dict[str, str]:
    """Start one execution per job, each from its own process, all at the same moment.

    :param spec: the pipeline's YAML file.
    :param jobs: ``{"name", "parameters", "select" (optional), "reference" (optional)}`` each.
    :param folder: an empty folder for the processes' signals.
    :returns: job name -> run id.
    """
    script = folder / "starter.py"
    script.write_text(textwrap.dedent(STARTER).lstrip())
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), cluster.url, str(spec), str(folder), json.dumps(job)],
            env=cluster.servers.env,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    try:
        deadline = time.monotonic() + timeout
        while len(list(folder.glob("ready-*"))) < len(jobs):
            assert time.monotonic() < deadline, "the starting processes never got ready"
            failed = [process.communicate() for process in processes if process.poll() is not None]
            assert not failed, failed
            time.sleep(0.1)
        (folder / "go").touch()
        results = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    lines = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    return {line["name"]: line["run_id"] for line in lines}


def blob_key(cluster: CeleryCluster, digest: str) -> str:
    """The S3 key of a blob (``objects/sha256/<2 hex>/<64 hex>`` under the store's prefix)."""
    hex_digest = digest.removeprefix("sha256:")
    return f"{store_prefix(cluster)}objects/sha256/{hex_digest[:2]}/{hex_digest}"


def store_prefix(cluster: CeleryCluster) -> str:
    return cluster.store_url.removeprefix(f"s3://{cluster.bucket}/").rstrip("/") + "/"


def read_object(cluster: CeleryCluster, key: str) -> bytes:
    return bytes(cluster.s3().get_object(Bucket=cluster.bucket, Key=key)["Body"].read())  # type: ignore[attr-defined]


def registry_versions(cluster: CeleryCluster, group: str) -> list[dict[str, Any]]:
    """Every version document of a model group, read from the bucket behind the store's back."""
    prefix = f"{store_prefix(cluster)}registry/{group}/"
    keys = [key for key in cluster.object_keys(prefix) if key.endswith(".json") and "/keys/" not in key]
    return [json.loads(read_object(cluster, key)) for key in sorted(keys)]


def model_of(cluster: CeleryCluster, version: dict[str, Any], file_name: str) -> bytes:
    """The bytes of one file of a registered model folder (its manifest, then the file's blob)."""
    manifest = json.loads(read_object(cluster, blob_key(cluster, version["model"]["digest"])))
    entry = manifest["files"][file_name]
    digest = entry["digest"] if isinstance(entry, dict) else entry
    return read_object(cluster, blob_key(cluster, digest))
