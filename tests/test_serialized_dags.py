"""The latest serialized DAG of a pipeline is deserialized once per content, and never served stale."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.usefixtures("airflow_home")


def identity(value: int = 0) -> int:
    return value


def chain(name: str, steps: int):
    from airflow_provider_mlpipe.model import FunctionStep, Pipeline

    made: list = []
    for index in range(steps):
        value = made[-1].output("result") if made else 0
        made.append(FunctionStep(f"s{index}", function=identity, arguments={"value": value}))
    return Pipeline(name, [], made)


def sync(pipeline) -> None:
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.local_runner import sync_dag

    with create_session() as session:
        sync_dag(pipeline.to_dag(), session=session)


def latest(dag_id: str):
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.serialized_dags import latest_serialized_dag

    with create_session() as session:
        return latest_serialized_dag(dag_id, session=session)


def airflow_latest(dag_id: str):
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session

    with create_session() as session:
        return DBDagBag().get_latest_version_of_dag(dag_id, session=session)


def test_the_same_content_is_deserialized_once_and_is_what_airflow_reads():
    from airflow.serialization.serialized_objects import DagSerialization

    name = f"serialized_{uuid.uuid4().hex[:8]}"
    sync(chain(name, 3))

    first, second = latest(name), latest(name)

    assert first is second
    assert DagSerialization.to_dict(first) == DagSerialization.to_dict(airflow_latest(name))


def test_a_changed_pipeline_is_read_again(monkeypatch: pytest.MonkeyPatch):
    # Airflow writes a DAG's new serialization at most every 30 s by default.
    monkeypatch.setenv("AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL", "0")
    name = f"serialized_{uuid.uuid4().hex[:8]}"
    sync(chain(name, 2))
    before = latest(name)

    # No run of the first version exists, so Airflow may rewrite that version in place (same
    # version, new content): the content's hash is what tells.
    sync(chain(name, 3))
    after = latest(name)

    assert sorted(before.task_dict) == ["_pipeline_outcome", "s0", "s1"]
    assert sorted(after.task_dict) == ["_pipeline_outcome", "s0", "s1", "s2"]
    assert sorted(after.task_dict) == sorted(airflow_latest(name).task_dict)


def test_a_pipeline_that_is_not_in_the_database_is_none():
    assert latest(f"missing_{uuid.uuid4().hex[:8]}") is None
