"""The provider's Airflow plugin: the "Selective run" view and its endpoints in the api-server, and
the scheduler listener that honours a ``selective_execution`` block in a plain trigger's conf.

The view is a React app (Airflow 3's ``react_apps``): the Airflow UI shows a "Selective run" tab on
every DAG run and, when it is opened, imports the bundle (``plugins/ui/dist/selective-run.js``, built
from ``plugins/ui/src``) from the plugin's FastAPI app and renders its default export with the run's
``dagId`` and ``runId``, inside the UI's own React tree, router and Chakra theme (light or dark).
Airflow cannot restrict a tab to some DAGs, so on a DAG that is not an mlpipe pipeline the view says so.

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
    # Paths relative to the UI's base URL (the UI resolves them against its <base href>), so the
    # view also loads when Airflow is served under a sub-path.
    react_apps = [
        {
            "name": "Selective run",
            "bundle_url": f"{URL_PREFIX.strip('/')}/ui/selective-run.js",
            "icon": f"{URL_PREFIX.strip('/')}/ui/icon.svg",
            "icon_dark_mode": f"{URL_PREFIX.strip('/')}/ui/icon-dark.svg",
            "destination": "dag_run",
            "url_route": "mlpipe-selective-run",
        }
    ]
    listeners = [listener]
