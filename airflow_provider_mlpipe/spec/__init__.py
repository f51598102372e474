"""The YAML front-end: ``*.pipeline.yaml`` specs become validated pipelines.

Light on purpose (PyYAML and the pure-Python model, no Airflow): the DAG processor and
``mlpipe validate`` import it for every spec.
"""

from __future__ import annotations

from airflow_provider_mlpipe.spec.loader import (
    SPEC_SUFFIXES,
    discover_spec_files,
    load_pipeline_file,
    load_pipeline_text,
    peek_pipeline_name,
)

__all__ = [
    "SPEC_SUFFIXES",
    "discover_spec_files",
    "load_pipeline_file",
    "load_pipeline_text",
    "peek_pipeline_name",
]
