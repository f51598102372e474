"""Lineage: what each step execution read and wrote (artifacts with digests, literal data inputs,
parameter values, code digest, run, cache source), kept as an index in the artifact store, queried
upstream ("which data, code and parameters produced this model?") and downstream ("which models used
this data set?"), shown as a table, JSON or a picture, and emitted to OpenLineage by the operators.

``from airflow_provider_mlpipe.lineage import lineage``::

    graph = lineage("abalone:3")                      # upstream of model version 3 of group abalone
    graph = lineage("sha256:ab12...", direction="downstream")
    for step in graph.steps(): print(step["step"], step["parameters"], step["code_digest"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mlpipe.lineage.graph import LineageGraph


def lineage(identifier: str, direction: str = "upstream", *, store_url: str | None = None) -> LineageGraph:
    """The lineage of a model version (``GROUP:VERSION``) or an artifact digest (``sha256:<hex>``).

    :param direction: ``upstream`` (what produced it) or ``downstream`` (what used it).
    :param store_url: the artifact store (default ``[mlpipe] artifact_store``).
    :raises LineageNotFoundError: the index knows no such model version or artifact.
    """
    from airflow_provider_mlpipe.lineage.graph import LineageQuery
    from airflow_provider_mlpipe.settings import artifact_store_at

    return LineageQuery(artifact_store_at(store_url)).query(identifier, direction)


__all__ = ["lineage"]
