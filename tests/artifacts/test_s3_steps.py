"""Steps that pass data through the S3 store, run for real through Airflow (the local runner, each
step a task instance through the Task SDK), with the connection kept only in the metadata DB: the
task reads it through Airflow, as a worker's task does through the API server."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.serializers import load_value
from airflow_provider_mlpipe.model import FunctionStep, Pipeline
from tests.operators import step_functions as fns

pytestmark = pytest.mark.usefixtures("airflow_home")


def test_steps_reach_s3_through_a_connection_kept_in_the_metadata_db(
    s3_conn: str, s3_endpoint: str, s3_bucket: str
):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import run_dag_locally

    conn_id = f"mlpipe_db_{uuid.uuid4().hex[:8]}"
    extra = json.dumps({"endpoint_url": s3_endpoint, "region_name": "us-east-1"})
    with create_session() as session:
        session.add(
            Connection(conn_id=conn_id, conn_type="aws", login="testing", password="testing", extra=extra)
        )
    try:
        array = FunctionStep("MakeArray", function=fns.make_array, arguments={"size": 6})
        total = FunctionStep("ArraySum", function=fns.array_sum, arguments={"array": array.output("result")})
        pipeline = Pipeline(
            f"s3_steps_{conn_id}",
            steps=[array, total],
            artifact_store=f"s3://{s3_bucket}/steps",
            aws_conn_id=conn_id,
        )
        result = run_dag_locally(build_dag(pipeline))
        assert result.state == "success", [(task.task_id, task.state) for task in result.tasks]

        # Read behind the pipeline's back, through the test's own connection: the data is in S3.
        reader = S3ArtifactStore(s3_bucket, "steps", aws_conn_id=s3_conn)
        produced = ArtifactRef.from_dict(result.task("MakeArray").return_value["outputs"]["result"])
        assert produced.uri.startswith(f"s3://{s3_bucket}/steps/objects/sha256/")
        assert produced.metadata["producer"]["step"] == "MakeArray"
        assert load_value(reader, produced).tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
        summed = ArtifactRef.from_dict(result.task("ArraySum").return_value["outputs"]["result"])
        assert load_value(reader, summed) == 15.0
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
