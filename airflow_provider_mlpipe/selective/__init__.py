"""Selective execution: re-run chosen steps, take everything upstream from a reference run.

:mod:`~airflow_provider_mlpipe.selective.model` holds its data and
:mod:`~airflow_provider_mlpipe.selective.plan` decides (both pure Python); :mod:`~airflow_provider_mlpipe.selective.runs`
writes the run and its reused steps to Airflow's metadata DB in one transaction.
"""

from __future__ import annotations

from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig, SelectivePlan

__all__ = ["SelectiveExecutionConfig", "SelectivePlan"]
