"""airflow-provider-mlpipe: SageMaker-style ML pipelines (typed parameters, steps, conditions,
artifacts, model registry, selective execution) as Apache Airflow DAGs.

The pipeline classes are importable from the package root (``from airflow_provider_mlpipe import
Pipeline, ParameterInteger, TrainingStep, SelectiveExecutionConfig``); they are loaded on first use so
that Airflow's provider discovery, which imports this package, stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Names importable from the package root that do not live in the model.
_OTHER_EXPORTS = {
    "SelectiveExecutionConfig": "airflow_provider_mlpipe.selective.model",
    "PipelineExecution": "airflow_provider_mlpipe.client.executions",
    "AirflowSession": "airflow_provider_mlpipe.client.rest",
    "LocalSession": "airflow_provider_mlpipe.client.local",
}


def __getattr__(name: str) -> Any:
    import importlib

    # import_module, not "from . import model": that form looks the name up on this package first,
    # which calls this very function again.
    model = importlib.import_module("airflow_provider_mlpipe.model")
    if name in model.__all__:
        return getattr(model, name)
    if name in _OTHER_EXPORTS:
        return getattr(importlib.import_module(_OTHER_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    import importlib

    model = importlib.import_module("airflow_provider_mlpipe.model")

    return sorted([*globals(), *model.__all__, *_OTHER_EXPORTS])
