"""docker-compose.yml, checked without Docker: it parses, every Airflow service runs the same image
with the same settings, no password or secret is written in it, and its executor, broker, result
backend and store settings are those of the Celery deployment the tests run (``cluster.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deployment import cluster

pytestmark = pytest.mark.deployment

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker"}
# A value that comes from .env and stops compose when it is missing or empty.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def filled(text: str) -> str:
    """``text`` with each value required from .env replaced by ``FROM-ENV`` (as compose fills it in)."""
    return REQUIRED.sub("FROM-ENV", text)


def harness_settings() -> dict[str, str]:
    """The harness's settings, filled in as it fills them (hosts and names do not matter here)."""
    postgres = {"user": "u", "host": "h", "port": 5432, "database": "d"}
    return cluster.deployment_settings(
        sql_alchemy_conn=cluster.SQL_ALCHEMY_CONN.format(**postgres),
        result_backend=cluster.RESULT_BACKEND.format(**postgres),
        broker_url=cluster.BROKER_URL.format(host="h", port=6379, number=0),
        artifact_store=cluster.ARTIFACT_STORE.format(bucket=cluster.BUCKET),
        aws_connection=json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://h:1"}}),
    )


def test_every_airflow_service_runs_the_same_image_with_the_same_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= AIRFLOW_SERVICES, set(services)
    anchor = compose["x-airflow"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == anchor["build"] and service["image"] == anchor["image"], name
        assert service["environment"] == compose["x-airflow-env"] == anchor["environment"], name
    assert services["worker"]["command"][:2] == ["celery", "worker"]
    for other in ("postgres", "redis", "objectstore"):
        assert other in services
    # Only the api-server is published, and only on the host's loopback.
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"api-server": ["127.0.0.1:8080:8080"]}


def test_the_components_start_after_the_migration_and_their_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ready = {"postgres": "service_healthy", "redis": "service_healthy"}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        conditions = {other: rule["condition"] for other, rule in services[name]["depends_on"].items()}
        assert conditions.items() >= {**ready, "airflow-init": "service_completed_successfully"}.items(), name
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["airflow-init"]["restart"] == "no"


def test_the_dockerfile_installs_the_provider_with_the_celery_extra(compose: dict[str, Any]) -> None:
    dockerfile = (REPO / compose["x-airflow"]["build"]["dockerfile"]).read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert re.search(r'pip install .*"/opt/mlpipe\[[^]]*\bcelery\b[^]]*\]"', dockerfile), dockerfile


def test_no_password_or_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    required: set[str] = set()

    def check(path: str, key: str, value: Any) -> None:
        text = str(value)
        required.update(REQUIRED.findall(text))
        if SECRET_NAME.search(key):
            assert REQUIRED.fullmatch(text), f"{path}.{key} must come from .env: {text!r}"
        # Credentials inside a URL (user:password@host).
        for url in re.findall(r"\w[\w+.-]*://[^\s\"']+", filled(text)):
            assert urlsplit(url).password in (None, "FROM-ENV"), f"{path}.{key}: {url}"

    environments = {"x-airflow-env": compose["x-airflow-env"]}
    environments.update({name: s.get("environment", {}) for name, s in compose["services"].items()})
    for path, environment in environments.items():
        for key, value in environment.items():
            check(path, key, value)
    connection = json.loads(compose["x-airflow-env"]["AIRFLOW_CONN_AWS_DEFAULT"])
    for field in ("login", "password"):
        assert REQUIRED.fullmatch(connection[field]), connection[field]
    for name, service in compose["services"].items():
        check(name, "command", service.get("command", ""))
        check(name, "entrypoint", service.get("entrypoint", ""))

    # .env.example lists every variable compose requires, with no value.
    example = (REPO / ".env.example").read_text()
    listed = dict(re.findall(r"^(\w+)=(.*)$", example, flags=re.MULTILINE))
    assert required and required <= set(listed), required - set(listed)
    assert all(value == "" for value in listed.values()), listed
    assert "secrets.token_urlsafe" in example  # how to generate them
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_the_settings_are_those_of_the_tested_celery_deployment(compose: dict[str, Any]) -> None:
    env = {key: filled(str(value)) for key, value in compose["x-airflow-env"].items()}
    harness = harness_settings()
    assert set(harness) | set(cluster.SHARED_KEYS) <= set(env), set(harness) - set(env)
    assert env["AIRFLOW__CORE__EXECUTOR"] == harness["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__MLPIPE__ARTIFACT_STORE"] == harness["AIRFLOW__MLPIPE__ARTIFACT_STORE"]
    assert env["AIRFLOW__MLPIPE__AWS_CONN_ID"] == harness["AIRFLOW__MLPIPE__AWS_CONN_ID"] == "aws_default"
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
    ):
        ours, theirs = urlsplit(harness[key]), urlsplit(env[key])
        assert theirs.scheme == ours.scheme, (key, theirs.scheme, ours.scheme)
    # The result backend is the metadata DB, in both.
    for settings in (harness, env):
        database = urlsplit(settings["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        backend = urlsplit(settings["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert (database.hostname, database.port, database.path) == (
            backend.hostname,
            backend.port,
            backend.path,
        )
    assert re.fullmatch(r"/\d+", urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).path)
    connection = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert connection["conn_type"] == "aws" and connection["extra"]["endpoint_url"].startswith(
        "http://objectstore:"
    )
    bucket = compose["services"]["objectstore-bucket"]["entrypoint"]
    assert f"s/{cluster.BUCKET}" in bucket
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
