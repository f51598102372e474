"""The YAML front-end: ``*.pipeline.yaml`` specs become validated pipelines.

Light on purpose (PyYAML and the pure-Python model, no Airflow): the DAG processor and
``mlpipe validate`` import it for every spec. Modules, by what they read: ``yaml_source`` (YAML with
line numbers), ``fields`` (shapes and locations), ``expressions`` (values and conditions), ``steps``,
``pipeline`` (a whole spec), and ``discovery`` (finding specs in a folder).
"""

from __future__ import annotations

from airflow_provider_mlpipe.spec.discovery import SPEC_SUFFIXES, discover_spec_files, peek_pipeline_name
from airflow_provider_mlpipe.spec.pipeline import load_pipeline_file, load_pipeline_text

__all__ = [
    "SPEC_SUFFIXES",
    "discover_spec_files",
    "load_pipeline_file",
    "load_pipeline_text",
    "peek_pipeline_name",
]
