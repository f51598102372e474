"""What each step reads and writes, for Airflow's OpenLineage provider.

The step operators implement ``get_openlineage_facets_on_start/complete/failure``; Airflow's
OpenLineage listener (``apache-airflow-providers-openlineage``, when it is installed and configured)
calls them and emits the datasets with each task's START, COMPLETE and FAIL events. On start a step
names its literal inputs (data files, S3 objects named in the spec); on completion everything its
record holds: the upstream artifacts and literal inputs it read, and the artifacts it wrote. Artifacts
are named by where their blob is (``file`` + path, ``s3://bucket`` + key), following OpenLineage's
dataset naming. Imported lazily: without the OpenLineage provider these methods return None and the
provider works as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from airflow_provider_mlpipe.fingerprint import literal_sources


def dataset_name(location: str, base_dir: Path | None = None) -> tuple[str, str]:
    """``(namespace, name)`` of a location: ``s3://bucket`` and the key, or ``file`` and the absolute path."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return f"s3://{bucket}", key or "/"
    if location.startswith("file://"):
        return "file", unquote(urlparse(location).path)
    path = Path(location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return "file", str(path.absolute())


def operator_lineage(step: Any, record: Mapping[str, Any] | None) -> Any:
    """An ``OperatorLineage`` for ``step``: its literal inputs, or, given its record, everything it read
    and wrote; None without the OpenLineage provider."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    inputs: dict[tuple[str, str], Any] = {}
    outputs: dict[tuple[str, str], Any] = {}
    if record is None:
        for source in literal_sources(step).values():
            if isinstance(source, str):
                inputs.setdefault(dataset_name(source, step.base_dir), None)
    else:
        for item in (record.get("inputs") or {}).values():
            where = item.get("uri") or item.get("location")
            if where:
                inputs.setdefault(dataset_name(str(where), step.base_dir), None)
        for ref in (record.get("outputs") or {}).values():
            if ref.get("uri"):
                outputs.setdefault(dataset_name(str(ref["uri"])), None)
    return OperatorLineage(
        inputs=[Dataset(namespace=namespace, name=name) for namespace, name in inputs],
        outputs=[Dataset(namespace=namespace, name=name) for namespace, name in outputs],
    )


class OpenLineageFacets:
    """The OpenLineage methods of the step operators (a mixin: the operator has ``step`` and, after a
    run, ``mlpipe_record``)."""

    step: Any

    def get_openlineage_facets_on_start(self) -> Any:
        """The literal inputs the step will read."""
        return operator_lineage(self.step, None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Every artifact and literal input the step read, and the artifacts it wrote."""
        return operator_lineage(self.step, getattr(self, "mlpipe_record", None))

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What the step was to read (it wrote nothing)."""
        return operator_lineage(self.step, None)
