"""What the "Selective run" view takes for granted of the installed Airflow UI, read from its built
code, so that an Airflow upgrade that changes it fails here, loudly, rather than in a user's browser.

The view's bundle (``plugins/ui/vite.config.ts``) is a UMD file that sets ``globalThis.AirflowPlugin``
and uses React, the JSX runtime, React Router and Chakra UI from globals the UI sets for plugins.
The UI imports a plugin's ``bundle_url`` relative to its ``<base href>``, takes the component from
``globalThis.AirflowPlugin`` and renders it with the route's ``dagId`` and ``runId``; it shows a
``dag_run`` plugin tab on every DAG run (it filters by destination only), which is why the view checks
itself that the DAG is a pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def ui_code() -> str:
    import airflow

    assets = Path(airflow.__file__).parent / "ui" / "dist" / "assets"
    entries = sorted(assets.glob("index-*.js"))
    assert entries, f"no built Airflow UI in {assets}"
    return "\n".join(path.read_text(errors="replace") for path in entries)


@pytest.mark.parametrize(
    "name", ["React", "ReactDOM", "ReactJSXRuntime", "ReactRouterDOM", "ChakraUI", "EmotionReact"]
)
def test_the_ui_shares_its_libraries_with_plugins_on_global_this(ui_code: str, name: str):
    assert f"Reflect.set(globalThis,`{name}`" in ui_code, f"the Airflow UI no longer sets globalThis.{name}"


def test_the_ui_imports_a_plugin_bundle_relative_to_its_base_and_reads_airflow_plugin(ui_code: str):
    assert re.search(r"new URL\(\w+\.bundle_url,document\.baseURI\)", ui_code)
    assert "globalThis.AirflowPlugin" in ui_code
    # The component gets the route's ids as props.
    assert re.search(r"\{dagId:\w+,mapIndex:\w+,runId:\w+,taskId:\w+\}", ui_code)


def test_the_ui_follows_the_colour_mode_with_a_class_on_the_root_element(ui_code: str):
    # next-themes with attribute "class": Chakra's semantic tokens switch with .dark on <html>,
    # so the view, drawn with the UI's Chakra, follows the mode without asking for it.
    assert "attribute:`class`,disableTransitionOnChange" in ui_code


def test_plugin_tabs_are_filtered_by_destination_only(ui_code: str):
    # If a later Airflow can restrict a tab to some DAGs (by tag), the view's tab should use it.
    assert re.search(r"\.filter\((\w+)=>\1\.destination===\w+&&!!\1\.url_route\)", ui_code)
