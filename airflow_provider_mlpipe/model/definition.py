"""A pipeline's definition as canonical JSON: what ``pipeline.definition()`` and ``mlpipe definition``
print, for review and diffs.

Canonical: keys sorted, steps in the pipeline's (stable) topological order, no absolute paths and
nothing that depends on the process (module names, memory addresses), so the same pipeline gives the
same text in every process, run after run. Each step carries its digest (definition and code file
contents): the digest selective execution compares.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mlpipe.model.pipeline import Pipeline

DEFINITION_VERSION = 1


def pipeline_definition_dict(pipeline: Pipeline) -> dict[str, Any]:
    """The definition as a JSON-able dict."""
    upstream = pipeline.upstream()
    config = pipeline.parallelism_config
    return {
        "version": DEFINITION_VERSION,
        "name": pipeline.name,
        "description": pipeline.description,
        "schedule": pipeline.schedule,
        "parallelism": {"max_parallel_execution_steps": config.max_parallel_execution_steps}
        if config
        else None,
        "max_concurrent_executions": pipeline.max_concurrent_executions,
        "parameters": [parameter.definition() for parameter in pipeline.parameters.values()],
        "steps": [
            {
                "name": name,
                "kind": pipeline.steps[name].kind,
                "digest": pipeline.steps[name].digest(),
                "dependencies": sorted(upstream[name]),
                "definition": pipeline.steps[name].definition(),
            }
            for name in pipeline.topological_order()
        ],
    }


def pipeline_definition(pipeline: Pipeline) -> str:
    """The definition as canonical JSON text (indented, keys sorted)."""
    return json.dumps(pipeline_definition_dict(pipeline), indent=2, sort_keys=True, default=str) + "\n"
