"""A Celery deployment of Airflow on 127.0.0.1 for tests and benchmarks, always torn down.

Postgres is the metadata DB and the Celery result backend (a fresh database per cluster), Redis the
Celery broker (a database number of its own, flushed at the end), two ``airflow celery worker``
processes with distinct hostnames run the tasks, the api-server, scheduler and dag-processor are
those of ``tests/integration/servers.py``, and the artifact store is an S3 bucket on the moto server
of ``tests/artifacts/s3_server.py``, reached through the Airflow connection ``aws_default``.

The settings are built here once (:func:`deployment_settings`); ``docker-compose.yml`` is checked
against them (``test_compose.py``), so the documented deployment is the tested one.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.artifacts.conftest import connection_json
from tests.artifacts.s3_server import start_s3_server
from tests.integration.servers import AirflowServers, airflow_servers

HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
REDIS_PORT = 6379
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 2
BUCKET = "mlpipe-artifacts"
# The forms of the settings: the harness fills them with its own hosts and names, docker-compose.yml
# with the services' (test_compose.py checks both use these).
EXECUTOR = "CeleryExecutor"
SQL_ALCHEMY_CONN = "postgresql+psycopg2://{user}@{host}:{port}/{database}"
RESULT_BACKEND = "db+postgresql+psycopg2://{user}@{host}:{port}/{database}"
BROKER_URL = "redis://{host}:{port}/{number}"
ARTIFACT_STORE = "s3://{bucket}/store"
AWS_CONN_ID = "aws_default"
# Marks a Redis database number as taken by a running cluster.
CLAIM_KEY = "mlpipe-deployment-claim"


def deployment_settings(
    *, sql_alchemy_conn: str, result_backend: str, broker_url: str, artifact_store: str, aws_connection: str
) -> dict[str, str]:
    """The settings that make a Celery deployment of the provider, shared by every component.

    :param sql_alchemy_conn: the Postgres metadata DB (``SQL_ALCHEMY_CONN``'s form).
    :param result_backend: Celery's result backend: the same Postgres DB (``RESULT_BACKEND``'s form).
    :param broker_url: the Redis broker (``BROKER_URL``'s form).
    :param artifact_store: the store (``ARTIFACT_STORE``'s form).
    :param aws_connection: the ``aws_default`` connection as JSON (credentials, endpoint, region).
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__MLPIPE__ARTIFACT_STORE": artifact_store,
        "AIRFLOW__MLPIPE__AWS_CONN_ID": AWS_CONN_ID,
        f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": aws_connection,
    }


# Set for every component by tests/integration/servers.py too: they must be the same everywhere (a
# worker's task signs in with the JWT secret and reaches the api-server at this URL).
SHARED_KEYS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")


# What the test components set besides: quicker reactions than production defaults, so that a
# killed worker's task is retried within a test's patience (the scheduler finds a task instance
# without heartbeat after this many seconds), and room for 20 runs of one pipeline at once.
TEST_TUNING = {
    "AIRFLOW__CORE__PARALLELISM": "8",
    "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "32",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "40",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
    "AIRFLOW__CELERY__OPERATION_TIMEOUT": "30",
    # Boto3 must find no credentials but the connection's, and reach 127.0.0.1 without a proxy.
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def unavailable_services() -> list[str]:
    """Why a Celery deployment cannot be started here: one sentence per missing piece (empty: it can)."""
    missing = []
    try:
        import celery  # noqa: F401
        import psycopg2  # noqa: F401
        import redis  # noqa: F401
        from airflow.providers.celery.executors import celery_executor  # noqa: F401
    except ImportError as error:
        missing.append(f"the celery extra is not installed ({error}): pip install -e '.[celery]'")
    if not _answers(POSTGRES_PORT):
        missing.append(f"Postgres does not answer on {HOST}:{POSTGRES_PORT}")
    if not _answers(REDIS_PORT):
        missing.append(f"Redis does not answer on {HOST}:{REDIS_PORT}")
    return missing


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty Postgres database (``mlpipe_deploy_<random>``); yields its name, drops it at the end."""
    import psycopg2

    name = f"mlpipe_deploy_{secrets.token_hex(6)}"
    admin = psycopg2.connect(host=HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname="postgres")
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            with admin.cursor() as cursor:
                # FORCE: connections a killed component left open must not keep the database alive.
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@contextmanager
def redis_database() -> Iterator[int]:
    """A Redis database number nobody uses (empty, claimed with a key); yields it, flushes it at the end."""
    import redis

    for number in range(1, 16):
        client = redis.Redis(host=HOST, port=REDIS_PORT, db=number)
        # SET NX: two sessions starting together never take the same number.
        if client.dbsize() == 0 and client.set(CLAIM_KEY, "1", nx=True):
            try:
                yield number
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError(f"no empty Redis database on {HOST}:{REDIS_PORT} (1 to 15 are all in use)")


@dataclass
class CeleryCluster:
    """A running Celery deployment and how to reach its parts."""

    servers: AirflowServers
    database: str
    redis_number: int
    s3_endpoint: str
    bucket: str
    store_url: str

    @property
    def url(self) -> str:
        return self.servers.url

    def logs(self) -> str:
        """Every component's recent output, for a failure message."""
        return "\n".join(f"----- {name} -----\n{self.servers.log(name)}" for name in self.servers.commands)

    def s3(self) -> object:
        """A boto3 client for looking at the bucket behind the store's back."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``."""
        client = self.s3()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)  # type: ignore[attr-defined]
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def worker_command(name: str, home: Path) -> list[str]:
    """The ``airflow`` arguments of Celery worker ``name``: its own hostname and pid file (two workers
    share one ``AIRFLOW_HOME``, whose default pid file only one may hold), no log server.
    """
    return [
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@{HOST}",
        "--concurrency",
        str(WORKER_CONCURRENCY),
        "--skip-serve-logs",
        "--pid",
        str(home / f"{name}.pid"),
    ]


@contextmanager
def celery_cluster(home: Path, dags_folder: Path, *, start_timeout: float = 300) -> Iterator[CeleryCluster]:
    """Start the whole deployment; yield it; stop every process and drop the database and Redis keys.

    :param home: an empty folder to use as ``AIRFLOW_HOME``.
    :param dags_folder: the dags folder every component parses.
    :param start_timeout: seconds to wait for a healthy api-server and scheduler.
    """
    with postgres_database() as database, redis_database() as number, start_s3_server() as endpoint:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        store_url = ARTIFACT_STORE.format(bucket=BUCKET)
        postgres = {"user": POSTGRES_USER, "host": HOST, "port": POSTGRES_PORT, "database": database}
        settings = deployment_settings(
            sql_alchemy_conn=SQL_ALCHEMY_CONN.format(**postgres),
            result_backend=RESULT_BACKEND.format(**postgres),
            broker_url=BROKER_URL.format(host=HOST, port=REDIS_PORT, number=number),
            artifact_store=store_url,
            aws_connection=connection_json(endpoint),
        )
        with airflow_servers(
            home,
            dags_folder,
            extra_env={**settings, **TEST_TUNING},
            sqlite_wal=False,
            start_timeout=start_timeout,
            extra_commands={name: worker_command(name, home) for name in WORKERS},
        ) as servers:
            yield CeleryCluster(
                servers=servers,
                database=database,
                redis_number=number,
                s3_endpoint=endpoint,
                bucket=BUCKET,
                store_url=store_url,
            )


def describe(cluster: CeleryCluster) -> str:
    """One line on where the cluster is (for benchmark output and skipped-test reasons)."""
    return json.dumps(
        {
            "api": cluster.url,
            "postgres": f"{HOST}:{POSTGRES_PORT}/{cluster.database}",
            "redis": f"{HOST}:{REDIS_PORT}/{cluster.redis_number}",
            "store": cluster.store_url,
            "s3": cluster.s3_endpoint,
        }
    )
