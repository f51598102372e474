"""A DAG that is not an mlpipe pipeline: the "Selective run" tab must say so rather than break."""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="plain", schedule=None, tags=["not-mlpipe"]):
    EmptyOperator(task_id="nothing")
