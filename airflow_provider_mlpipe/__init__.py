"""airflow-provider-mlpipe: SageMaker-style ML pipelines (typed parameters, steps, conditions,
artifacts, model registry) as Apache Airflow DAGs.

The pipeline classes are importable from the package root (``from airflow_provider_mlpipe import
Pipeline, ParameterInteger, TrainingStep``); they are loaded on first use so that Airflow's provider
discovery, which imports this package, stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    from airflow_provider_mlpipe import model

    if name in model.__all__:
        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    from airflow_provider_mlpipe import model

    return sorted([*globals(), *model.__all__])
