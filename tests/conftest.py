"""Plain pytest fixtures against real Airflow 3.3 (no ``pytest-airflow``: it is dead and breaks pytest).

Airflow reads its configuration when it is first imported, so the environment is set here, at import
of this conftest, before any test module imports Airflow: a temporary ``AIRFLOW_HOME`` with its own
SQLite DB, an empty dags folder (``dag.test()``-style syncing must not parse the repository's dags),
and a local artifact store folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_HOME = Path(tempfile.mkdtemp(prefix="mlpipe-tests-"))

for _key in [key for key in os.environ if key.startswith("AIRFLOW")]:
    del os.environ[_key]
os.environ.update(
    AIRFLOW_HOME=str(TEST_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(TEST_HOME / "dags"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__MLPIPE__ARTIFACT_STORE=str(TEST_HOME / "artifacts"),
)
(TEST_HOME / "dags").mkdir()


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """A migrated SQLite metadata DB in the temporary ``AIRFLOW_HOME``; yields that folder."""
    from airflow_provider_mlpipe.local_runner import ensure_database

    ensure_database()
    yield TEST_HOME


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Keep the folder when tests failed: its task logs and artifacts explain the failure.
    if exitstatus == 0:
        shutil.rmtree(TEST_HOME, ignore_errors=True)
    else:
        print(f"\nmlpipe test AIRFLOW_HOME kept for inspection: {TEST_HOME}")
