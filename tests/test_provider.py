"""The package as Airflow sees it: a provider, a plugin, and an import that costs nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import TEST_HOME


def airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW_HOME": str(TEST_HOME)}
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        cwd=TEST_HOME,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_airflow_lists_the_provider_and_its_plugin():
    providers = airflow("providers", "list")
    assert providers.returncode == 0, providers.stderr
    assert "airflow-provider-mlpipe" in providers.stdout
    plugins = airflow("plugins", "--output", "json")
    assert plugins.returncode == 0, plugins.stderr
    assert '"name": "mlpipe"' in plugins.stdout
    assert "airflow_provider_mlpipe.plugins.listener" in plugins.stdout
    assert "mlpipe-selective-run" in plugins.stdout


def test_provider_discovery_and_the_plugin_import_nothing_heavy():
    # Airflow imports these in every component and every task process.
    code = (
        "import sys\n"
        "from airflow_provider_mlpipe.provider_info import get_provider_info\n"
        "info = get_provider_info()\n"
        "assert info['package-name'] == 'airflow-provider-mlpipe', info\n"
        "assert 'artifact_store' in info['config']['mlpipe']['options']\n"
        "import airflow_provider_mlpipe\n"
        "heavy = [m for m in ('pandas', 'numpy', 'fastapi', 'airflow_provider_mlpipe.model') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import airflow_provider_mlpipe.plugins\n"
        "assert 'fastapi.applications' not in sys.modules and 'pandas' not in sys.modules\n"
    )
    checked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr


def test_the_pipeline_classes_import_from_the_package_root():
    from airflow_provider_mlpipe import Pipeline, SelectiveExecutionConfig, TrainingStep
    from airflow_provider_mlpipe.model import Pipeline as ModelPipeline

    assert Pipeline is ModelPipeline
    assert TrainingStep.kind == "training"
    assert SelectiveExecutionConfig("A,B").selected_steps == ("A", "B")
