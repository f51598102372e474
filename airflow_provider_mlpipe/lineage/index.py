"""The lineage index: what each step execution read and wrote, kept in the artifact store beside the
artifacts, so that a query follows edges instead of scanning every run.

Written by each step's task when it ends (computed or a cache hit), as small JSON documents:

    lineage/steps/<pipeline>/<run key>/<step>.json             the step execution: its inputs (artifact or
                                                               literal, with digests), outputs, parameter
                                                               values, code digest and files, fingerprint,
                                                               cache hit and source run
    lineage/artifacts/<2 hex>/<digest hex>/produced/<k>.json   an edge: this execution wrote the artifact
    lineage/artifacts/<2 hex>/<digest hex>/used/<k>.json       an edge: this execution read the artifact

(``<run key>`` and ``<k>`` are hashes: run ids hold characters a store key may not.) Upstream of an
artifact is one listing of its ``produced/`` edges per hop, downstream one listing of ``used/``: the
cost of a query grows with the lineage it returns, not with the number of runs. A literal input (a
data file named in the spec) is an artifact of the index too, named by its content digest (its
``sha256sum``), so "which models used this data set" starts from that digest.

Steps a selective run reused start no task and write nothing: the artifacts they stand for keep the
edges of the run that computed them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlpipe.artifacts.reference import check_digest
from airflow_provider_mlpipe.artifacts.store import ArtifactNotFoundError, ArtifactStore
from airflow_provider_mlpipe.exceptions import ArtifactError

log = logging.getLogger(__name__)

LINEAGE_PREFIX = "lineage/"
DOCUMENT_VERSION = 1
PRODUCED = "produced"
USED = "used"
# The parts of a step record that lineage keeps.
RECORD_FIELDS = (
    "kind",
    "fingerprint",
    "digest",
    "code_digest",
    "code_files",
    "parameters",
    "execution",
    "inputs",
    "outputs",
    "metadata",
    "cache",
    "source_run_id",
    "origin_run_id",
)


def _hash(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def execution_key(pipeline: str, run_id: str, step: str) -> str:
    """The key of a step execution's lineage document."""
    return f"{LINEAGE_PREFIX}steps/{pipeline}/{_hash(run_id)}/{step}.json"


def edges_prefix(digest: str, role: str) -> str:
    """Where the ``produced`` or ``used`` edges of an artifact are."""
    hexdigest = check_digest(digest).removeprefix("sha256:")
    return f"{LINEAGE_PREFIX}artifacts/{hexdigest[:2]}/{hexdigest}/{role}/"


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


class LineageIndex:
    """The lineage documents in an artifact store.

    :param store: the artifact store of the pipelines (each pipeline's own store, if it has one).
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def record_step(self, pipeline: str, run_id: str, step: str, record: Mapping[str, Any]) -> str:
        """Write the lineage of one step execution (its document, then its edges); return its key."""
        key = execution_key(pipeline, run_id, step)
        document = {
            "mlpipe_lineage": DOCUMENT_VERSION,
            "pipeline": pipeline,
            "run_id": run_id,
            "step": step,
            "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{name: record[name] for name in RECORD_FIELDS if name in record},
        }
        self.store.write_document(key, _json(document))
        edge = {"execution": key, "pipeline": pipeline, "run_id": run_id, "step": step}
        cache_hit = bool((record.get("cache") or {}).get("hit"))
        for name, ref in (record.get("outputs") or {}).items():
            self._edge(ref.get("digest"), PRODUCED, key, {**edge, "name": name, "cache_hit": cache_hit})
        for name, item in (record.get("inputs") or {}).items():
            self._edge(item.get("digest"), USED, key, {**edge, "name": name})
        return key

    def _edge(self, digest: Any, role: str, key: str, edge: Mapping[str, Any]) -> None:
        try:
            prefix = edges_prefix(str(digest), role)
        except ArtifactError:
            return  # an input without a digest (a record written before digests existed)
        self.store.write_document(prefix + _hash(key) + ".json", _json(edge))

    def execution(self, key: str) -> dict[str, Any] | None:
        """A step execution's document, or None if it is gone or unreadable."""
        try:
            document = json.loads(self.store.read_document(key))
        except (ArtifactNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def executions(self, digest: str, role: str) -> list[dict[str, Any]]:
        """The step executions that ``produced`` or ``used`` the artifact ``digest``."""
        found = []
        for edge_key in self.store.list_documents(edges_prefix(digest, role)):
            try:
                edge = json.loads(self.store.read_document(edge_key))
            except (ArtifactNotFoundError, ValueError):
                continue
            document = self.execution(str(edge.get("execution"))) if isinstance(edge, dict) else None
            if document is not None:
                found.append(document)
        return sorted(found, key=lambda item: (str(item.get("recorded_at")), str(item.get("step"))))

    def known(self, digest: str) -> bool:
        """Whether any step execution wrote or read the artifact ``digest``."""
        return bool(
            self.store.list_documents(edges_prefix(digest, PRODUCED))
            or self.store.list_documents(edges_prefix(digest, USED))
        )


def record_lineage(
    store: ArtifactStore, pipeline: str, run_id: str, step: str, record: Mapping[str, Any]
) -> None:
    """Write a step's lineage; a store that refuses is logged, never a failure of the step (its outputs
    are written and its record is in Airflow)."""
    try:
        LineageIndex(store).record_step(pipeline, run_id, step, record)
    except ArtifactError as error:
        log.warning("Lineage of step %s (run %s) not recorded: %s", step, run_id, error)
