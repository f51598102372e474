"""Fixtures of the artifact tests: a local folder, and S3 on a real S3-compatible server on 127.0.0.1.

The S3 credentials, endpoint and region reach the store only through an Airflow connection
(``AIRFLOW_CONN_MLPIPE_TEST_S3``): no ``AWS_*`` variable and no ``~/.aws`` file is visible to a test.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.store import ArtifactStore

from .s3_server import start_s3_server

S3_CONN_ID = "mlpipe_test_s3"


def connection_json(endpoint: str, login: str = "testing", password: str = "testing") -> str:
    """An Airflow ``aws`` connection, as ``AIRFLOW_CONN_<ID>`` holds it."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": login,
            "password": password,
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )


def without_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials, profile, endpoint or proxy from the machine can reach a test."""
    for name in [name for name in os.environ if name.startswith(("AWS_", "AIRFLOW_CONN_"))]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("AIRFLOW__MLPIPE__AWS_CONN_ID", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The S3-compatible server (see ``s3_server.py``), started once, always stopped."""
    with start_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_conn(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The id of an Airflow connection to the server (credentials, endpoint and region)."""
    without_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", connection_json(s3_endpoint))
    return S3_CONN_ID


@pytest.fixture
def s3_admin(s3_conn: str) -> object:
    """A client for looking behind the store's back (made from the same connection)."""
    from airflow_provider_mlpipe.artifacts.aws import s3_client

    return s3_client(s3_conn)


@pytest.fixture
def s3_bucket(s3_admin: object) -> str:
    """A new, empty bucket for each test."""
    name = f"mlpipe-test-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    """The same test against a local folder and an S3 prefix."""
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "store")
    conn = request.getfixturevalue("s3_conn")
    bucket = request.getfixturevalue("s3_bucket")
    return S3ArtifactStore(bucket, "team/artifacts", aws_conn_id=conn)
