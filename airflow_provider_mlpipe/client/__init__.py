"""The executions API: start pipelines, follow and stop executions, from Python or the ``mlpipe`` command.

``pipeline.start()`` uses :func:`default_session`: the Airflow REST API when ``[mlpipe] api_url`` is set
(``AIRFLOW__MLPIPE__API_URL``), else local mode (in this process, on the embedded DB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mlpipe.client.executions import ExecutionsSession

_EXPORTS = {
    "AirflowSession": "airflow_provider_mlpipe.client.rest",
    "ApiRetryPolicy": "airflow_provider_mlpipe.client.retry",
    "LocalSession": "airflow_provider_mlpipe.client.local",
    "PipelineExecution": "airflow_provider_mlpipe.client.executions",
    "ExecutionDescription": "airflow_provider_mlpipe.client.executions",
    "StepExecution": "airflow_provider_mlpipe.client.executions",
}

__all__ = [*_EXPORTS, "default_session"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_session() -> ExecutionsSession:
    """An :class:`AirflowSession` if an API URL is configured, else a :class:`LocalSession`."""
    from airflow_provider_mlpipe.settings import default_api_url

    if default_api_url():
        from airflow_provider_mlpipe.client.rest import AirflowSession

        return AirflowSession()
    from airflow_provider_mlpipe.client.local import LocalSession

    return LocalSession()
