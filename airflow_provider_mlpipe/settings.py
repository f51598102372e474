"""Provider settings read from Airflow's configuration (``[mlpipe]`` section or ``AIRFLOW__MLPIPE__*``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.store import ArtifactStore
    from airflow_provider_mlpipe.model.pipeline import Pipeline


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


def mlpipe_option(option: str) -> str:
    """``[mlpipe] <option>`` from ``AIRFLOW__MLPIPE__<OPTION>`` or Airflow's configuration; "" if unset."""
    configured = os.environ.get(f"AIRFLOW__MLPIPE__{option.upper()}")
    if configured is None:
        try:
            from airflow.sdk.configuration import conf

            configured = conf.get("mlpipe", option, fallback="")
        except ImportError:  # the model and CLI also work without the Task SDK
            configured = ""
    return configured or ""


def dags_folder() -> Path | None:
    """Airflow's ``[core] dags_folder`` (``AIRFLOW__CORE__DAGS_FOLDER``), if it can be read."""
    configured = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if configured is None:
        try:
            from airflow.sdk.configuration import conf

            configured = conf.get("core", "dags_folder", fallback="")
        except ImportError:
            configured = ""
    return Path(configured).expanduser() if configured else None


def default_artifact_store_url() -> str:
    """``[mlpipe] artifact_store``; by default the folder ``$AIRFLOW_HOME/mlpipe/artifacts``."""
    return mlpipe_option("artifact_store") or str(airflow_home() / "mlpipe" / "artifacts")


def default_api_url() -> str | None:
    """``[mlpipe] api_url``: the api-server the Python client and ``mlpipe start`` talk to, if set."""
    return mlpipe_option("api_url") or None


@lru_cache(maxsize=16)
def _store(url: str) -> ArtifactStore:
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    return store_from_url(url)


def artifact_store_for(pipeline: Pipeline | None = None) -> ArtifactStore:
    """The artifact store of ``pipeline`` (its own ``artifact_store`` if set, else the provider's)."""
    return artifact_store_at(pipeline.artifact_store if pipeline is not None else None)


def artifact_store_at(url: str | None) -> ArtifactStore:
    """The artifact store at ``url``; with None, the provider's (``[mlpipe] artifact_store``)."""
    return _store(str(url or default_artifact_store_url()))
