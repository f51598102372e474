"""``selective.xcom_rows.add_xcoms`` writes, in one statement, the rows ``XComModel.set`` writes one by
one. It depends on Airflow's internals (the XCom table and what ``set`` puts in it): these tests
compare the two on the real metadata DB, so an Airflow upgrade that changes either fails here."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_mlpipe.selective.xcom_rows import add_xcoms

pytestmark = pytest.mark.usefixtures("airflow_home")

# The XCom table's columns that add_xcoms knows how to fill; a new column in an Airflow upgrade
# may need a value that XComModel.set computes and add_xcoms does not.
KNOWN_COLUMNS = {
    "dag_run_id",
    "task_id",
    "map_index",
    "key",
    "dag_result",
    "dag_id",
    "run_id",
    "value",
    "timestamp",
}
RECORD = {"mlpipe": 1, "step": "a", "outputs": {"result": {"uri": "file:///x", "digest": "sha256:0"}}}


def new_run(session: Any, tasks: list[str]) -> Any:
    from airflow.models.dagbag import DBDagBag
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_provider_mlpipe.dagruns import create_manual_run
    from airflow_provider_mlpipe.local_runner import sync_dag

    dag = DAG(f"xcom_rows_{uuid.uuid4().hex[:8]}", schedule=None)
    for task_id in tasks:
        EmptyOperator(task_id=task_id, dag=dag)
    sync_dag(dag, session=session)
    session.flush()
    serialized = DBDagBag().get_latest_version_of_dag(dag.dag_id, session=session)
    return create_manual_run(
        serialized,
        conf={},
        note=None,
        state="queued",
        triggered_by="rest_api",
        triggering_user_name=None,
        session=session,
    )


def rows(session: Any, run: Any) -> dict[str, dict[str, Any]]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    found = session.execute(select(XComModel.__table__).where(XComModel.run_id == run.run_id)).mappings()
    return {row["task_id"]: dict(row) for row in found}


def test_the_xcom_table_has_the_columns_add_xcoms_fills():
    from airflow.models.xcom import XComModel

    assert {column.name for column in XComModel.__table__.columns} == KNOWN_COLUMNS


@pytest.mark.parametrize("replace", [True, False], ids=["replacing", "new-run"])
def test_add_xcoms_writes_the_rows_xcom_set_writes(replace: bool):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = new_run(session, ["by_set", "by_add"])
        XComModel.set(
            key="return_value",
            value=RECORD,
            dag_id=run.dag_id,
            task_id="by_set",
            run_id=run.run_id,
            serialize=False,
            session=session,
        )
        add_xcoms(run, "return_value", {"by_add": RECORD}, session=session, replace=replace)
        session.flush()
        written = rows(session, run)

    def comparable(row: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in row.items() if key not in ("task_id", "timestamp")}

    assert comparable(written["by_add"]) == comparable(written["by_set"])
    assert written["by_add"]["timestamp"] is not None


def test_add_xcoms_replaces_an_xcom_already_there_and_reads_back_as_pushed():
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.dagruns import read_step_records

    with create_session() as session:
        run = new_run(session, ["a", "b"])
        XComModel.set(
            key="return_value",
            value={"old": True},
            dag_id=run.dag_id,
            task_id="a",
            run_id=run.run_id,
            serialize=False,
            session=session,
        )
        add_xcoms(run, "return_value", {"a": RECORD, "b": {"step": "b"}}, session=session)
        session.flush()
        records = read_step_records(run.dag_id, run.run_id, session=session)

    assert records == {"a": RECORD, "b": {"step": "b"}}
