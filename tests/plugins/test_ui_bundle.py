"""The "Selective run" view ships built inside the package and the plugin's app serves it where the
plugin's ``react_apps`` entry tells the Airflow UI to load it from."""

from __future__ import annotations

from importlib import resources

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mlpipe.plugins import URL_PREFIX, MlpipePlugin

# What the Airflow 3.3 UI puts on globalThis for plugins to share (airflow/ui/src/main.tsx).
SHARED_GLOBALS = ["React", "ReactJSXRuntime", "ReactRouterDOM", "ChakraUI"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    from airflow_provider_mlpipe.plugins.api import app

    return TestClient(app)


def bundle_text() -> str:
    return (
        resources.files("airflow_provider_mlpipe.plugins")
        .joinpath("ui", "dist", "selective-run.js")
        .read_text()
    )


def test_the_built_bundle_is_package_data_shaped_as_the_airflow_ui_loads_it():
    bundle = bundle_text()
    # A UMD build whose browser branch sets globalThis.AirflowPlugin, the global the UI reads
    # after importing bundle_url, and takes React and Chakra from the UI's globals.
    assert "AirflowPlugin=" in bundle
    for name in SHARED_GLOBALS:
        assert f".{name}" in bundle, name
    # The UI's own React is shared, never a second copy.
    assert "react.production" not in bundle and "__SECRET_INTERNALS" not in bundle


def test_the_plugin_registers_one_dag_run_view_whose_files_the_app_serves(client: TestClient):
    assert MlpipePlugin.external_views == []
    (view,) = MlpipePlugin.react_apps
    assert view["destination"] == "dag_run" and view["url_route"] == "mlpipe-selective-run"
    for key in ("bundle_url", "icon", "icon_dark_mode"):
        # Relative to the UI's <base href>, under the plugin app's prefix.
        assert view[key].startswith(URL_PREFIX.strip("/") + "/ui/"), view[key]
        response = client.get(view[key].removeprefix(URL_PREFIX.strip("/")))
        assert response.status_code == 200, (key, response.text)
    response = client.get(view["bundle_url"].removeprefix(URL_PREFIX.strip("/")))
    # A module script must come with a JavaScript MIME type, or the browser refuses to run it.
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.text == bundle_text()
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", ["nope.js", "api.py", "..%2Fapi.py", ".hidden.js", "selective-run.map"])
def test_anything_but_a_bundle_file_is_not_found(client: TestClient, name: str):
    assert client.get(f"/ui/{name}").status_code == 404
