"""Turns every ``*.pipeline.yaml`` spec in this folder into an Airflow DAG (airflow-provider-mlpipe).

A spec that does not load shows as an import error of that spec; the other pipelines still load.
"""

from airflow_provider_mlpipe.factory import load_pipeline_dags

load_pipeline_dags(globals())
