"""The provider's Airflow plugin: the selective-run page and endpoint in the api-server, and the
scheduler listener that honours a ``selective_execution`` block in a plain trigger's conf.

Airflow loads this plugin in every component, task processes included, so this module imports
nothing heavy: the FastAPI app is built on first access, which only the api-server makes.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_mlpipe.plugins import listener

URL_PREFIX = "/mlpipe"


class _LazyFastAPIApps:
    """A class attribute whose value (the FastAPI app) is built when the api-server first reads it."""

    def __init__(self) -> None:
        self._apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self._apps is None:
            from airflow_provider_mlpipe.plugins.api import app

            self._apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "mlpipe"}]
        return self._apps


class MlpipePlugin(AirflowPlugin):
    """Selective execution in the Airflow UI and API, and for runs triggered with a conf block."""

    name = "mlpipe"
    fastapi_apps = _LazyFastAPIApps()  # type: ignore[assignment]
    external_views = [
        {
            "name": "Selective run",
            "href": f"{URL_PREFIX}/selective?dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "mlpipe-selective-run",
        }
    ]
    listeners = [listener]
