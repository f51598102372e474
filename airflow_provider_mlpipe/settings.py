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
    # Read for every step of every DAG a file builds: remembered by the settings it comes from.
    return _dags_folder(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER"), os.environ.get("AIRFLOW_HOME"))


@lru_cache(maxsize=8)
def _dags_folder(configured: str | None, _home: str | None) -> Path | None:
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


def aws_conn_id_for(pipeline: Pipeline | None = None) -> str | None:
    """The pipeline's own ``aws_conn_id``; None: the S3 store decides (``[mlpipe] aws_conn_id``, else
    ``aws_default``, see ``artifacts.aws``)."""
    return getattr(pipeline, "aws_conn_id", None) or None


@lru_cache(maxsize=16)
def _store(url: str, aws_conn_id: str | None) -> ArtifactStore:
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    return store_from_url(url, aws_conn_id=aws_conn_id)


def artifact_store_for(pipeline: Pipeline | None = None) -> ArtifactStore:
    """The artifact store of ``pipeline`` (its own ``artifact_store`` if set, else the provider's),
    reached through its ``aws_conn_id`` if it is on S3."""
    if pipeline is None:
        return artifact_store_at(None)
    return artifact_store_at(pipeline.artifact_store, aws_conn_id=aws_conn_id_for(pipeline))


def artifact_store_at(url: str | None, *, aws_conn_id: str | None = None) -> ArtifactStore:
    """The artifact store at ``url``; with None, the provider's (``[mlpipe] artifact_store``).

    :param aws_conn_id: for S3, the Airflow connection; None: ``[mlpipe] aws_conn_id``, else
        ``aws_default``.
    """
    return _store(str(url or default_artifact_store_url()), aws_conn_id)
