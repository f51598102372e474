"""The Celery deployment shared by every test of this folder: started once per session (it takes a
minute or two on 2 cores), always torn down. Skipped, saying which, where Postgres or Redis do not
answer on 127.0.0.1 or the celery extra is missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment.cluster import CeleryCluster, celery_cluster, unavailable_services
from tests.integration.servers import RestCalls

REPO = Path(__file__).resolve().parents[2]
PIPELINES = Path(__file__).resolve().parent / "pipelines"
DAGS = ("abalone", "grid", "slow")


def deployment_dags(folder: Path) -> Path:
    """A dags folder with the abalone example and the deployment tests' own pipelines."""
    folder.mkdir()
    for name in ("mlpipe_pipelines.py", "abalone.pipeline.yaml", ".airflowignore"):
        shutil.copy(REPO / "dags" / name, folder / name)
    shutil.copytree(REPO / "dags" / "abalone", folder / "abalone")
    for spec in PIPELINES.glob("*.pipeline.yaml"):
        shutil.copy(spec, folder / spec.name)
        shutil.copytree(PIPELINES / spec.name.split(".")[0], folder / spec.name.split(".")[0])
    return folder


def wait_for_dags(cluster: CeleryCluster, dag_ids: tuple[str, ...], timeout: float = 180) -> None:
    """Wait until the dag-processor has stored every one of ``dag_ids``."""
    rest = RestCalls(cluster.url)
    deadline = time.monotonic() + timeout
    while any(rest.call("GET", f"/api/v2/dags/{dag_id}")[0] != 200 for dag_id in dag_ids):
        assert time.monotonic() < deadline, f"DAGs {dag_ids} never appeared:\n{cluster.logs()}"
        cluster.servers.check_alive()
        time.sleep(1)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryCluster]:
    missing = unavailable_services()
    if missing:
        pytest.skip("no Celery deployment: " + "; ".join(missing))
    home = tmp_path_factory.mktemp("airflow-celery")
    with celery_cluster(home, deployment_dags(home / "dags")) as running:
        wait_for_dags(running, DAGS)
        yield running
