"""The step cache: outputs of earlier runs, found by a step's fingerprint, kept in the artifact store.

One small JSON document per entry, ``cache/<pipeline>/<step>/<fingerprint hex>.json``, holding the
output references (never data: the artifacts stay where they are, content addressed), the step's
metadata and the run that computed them. Living in the store, the index works with many workers and
on S3 alike. Entries are written create-only (``If-None-Match: *`` on S3, an atomic link locally):
two runs racing on one key both succeed, and one entry remains. An entry is replaced (compare-and-swap
on the version that was read) only when it was found expired, corrupt or pointing at artifacts that
are gone, or when a run forced a miss (``no_cache``).

A lookup never fails a step: an unreadable or corrupt entry, or one whose artifacts were deleted, is a
miss with a warning, and the step runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.store import ArtifactNotFoundError, ArtifactStore
from airflow_provider_mlpipe.exceptions import ArtifactError, MlpipeError

log = logging.getLogger(__name__)

CACHE_PREFIX = "cache/"
ENTRY_VERSION = 1
# The key of ``dag_run.conf`` that forces every step of the run to miss (it is not a parameter).
NO_CACHE_CONF_KEY = "no_cache"


def entry_key(pipeline: str, step: str, fingerprint: str) -> str:
    """Where the entry of ``fingerprint`` for ``step`` of ``pipeline`` is kept in the store."""
    return f"{CACHE_PREFIX}{pipeline}/{step}/{fingerprint.removeprefix('sha256:')}.json"


def forced_miss(conf: Mapping[str, Any] | None) -> bool:
    """Whether a run's conf asks every step to ignore the cache (``{"no_cache": true}``)."""
    return bool((conf or {}).get(NO_CACHE_CONF_KEY))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CacheEntry:
    """One cached result: what a step with this fingerprint produced, and in which run."""

    pipeline: str
    step: str
    fingerprint: str
    run_id: str
    created_at: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    origin_run_id: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "mlpipe_cache": ENTRY_VERSION,
                "pipeline": self.pipeline,
                "step": self.step,
                "fingerprint": self.fingerprint,
                "run_id": self.run_id,
                "origin_run_id": self.origin_run_id,
                "created_at": self.created_at,
                "outputs": self.outputs,
                "metadata": self.metadata,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CacheEntry:
        """Read an entry; a ``ValueError`` if it is not one (corrupt, cut, another format)."""
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("mlpipe_cache") != ENTRY_VERSION:
            raise ValueError("not a cache entry of this version")
        outputs = document.get("outputs")
        if not isinstance(outputs, dict):
            raise ValueError("no outputs")
        try:
            for ref in outputs.values():
                ArtifactRef.from_dict(ref)
        except ArtifactError as error:
            raise ValueError(str(error)) from None
        created = str(document["created_at"])
        datetime.fromisoformat(created)
        return cls(
            pipeline=str(document["pipeline"]),
            step=str(document["step"]),
            fingerprint=str(document["fingerprint"]),
            run_id=str(document["run_id"]),
            created_at=created,
            outputs=outputs,
            metadata=dict(document.get("metadata") or {}),
            origin_run_id=document.get("origin_run_id"),
        )

    def created(self) -> datetime:
        value = datetime.fromisoformat(self.created_at)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class CacheLookup:
    """The answer of :meth:`StepCache.lookup`.

    :param entry: the entry on a hit, else None.
    :param reason: why it is a miss (``no entry``, ``expired``...), None on a hit.
    :param replace_tag: the version of an entry found unusable: the new result replaces it.
    """

    entry: CacheEntry | None
    reason: str | None = None
    replace_tag: str | None = None

    @property
    def hit(self) -> bool:
        return self.entry is not None


class StepCache:
    """The cache index in an artifact store.

    :param store: the pipeline's artifact store.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def lookup(
        self,
        pipeline: str,
        step: str,
        fingerprint: str,
        *,
        expire_after: Any = None,
        now: datetime | None = None,
    ) -> CacheLookup:
        """The usable entry for ``fingerprint``, or a miss and why. Never raises for a bad entry.

        :param expire_after: a ``pendulum.Duration``; entries older than that are misses.
        """
        key = entry_key(pipeline, step, fingerprint)
        try:
            data, tag = self.store.read_document_tagged(key)
        except ArtifactNotFoundError:
            return CacheLookup(None, "no entry for this fingerprint")
        except ArtifactError as error:
            log.warning("Cache entry %s cannot be read (%s): treated as a miss", key, error)
            return CacheLookup(None, f"the entry cannot be read: {error}")
        try:
            entry = CacheEntry.from_json(data)
            if entry.fingerprint != fingerprint or entry.step != step or entry.pipeline != pipeline:
                raise ValueError("it is the entry of another step or fingerprint")
        except (ValueError, KeyError, TypeError) as error:
            log.warning("Cache entry %s is corrupt (%s): treated as a miss, and replaced", key, error)
            return CacheLookup(None, f"the entry is corrupt: {error}", replace_tag=tag)
        if expire_after is not None:
            import pendulum

            # pendulum adds months and years by the calendar (P1M from 31 January is 28/29 February).
            expires = pendulum.instance(entry.created()) + expire_after
            if expires <= (now or utcnow()):
                return CacheLookup(
                    None, f"the entry of run {entry.run_id} expired at {expires.isoformat()}", tag
                )
        missing = self._missing_artifacts(entry)
        if missing:
            log.warning(
                "Cache entry %s (run %s) points to artifacts that are gone (%s): treated as a miss, and replaced",
                key,
                entry.run_id,
                ", ".join(missing),
            )
            return CacheLookup(None, f"artifacts of run {entry.run_id} are gone: {', '.join(missing)}", tag)
        return CacheLookup(entry)

    def _missing_artifacts(self, entry: CacheEntry) -> list[str]:
        """The outputs of ``entry`` whose blobs (for a folder: its manifest or any file) are gone."""
        missing = []
        for name, data in entry.outputs.items():
            ref = ArtifactRef.from_dict(data)
            try:
                if not self.store.exists(ref.digest) or (
                    ref.type == "directory" and not self._directory_complete(ref.digest)
                ):
                    missing.append(f"{name} ({ref.digest[:19]})")
            except MlpipeError as error:
                missing.append(f"{name} ({error})")
        return missing

    def _directory_complete(self, digest: str) -> bool:
        manifest = json.loads(self.store.get_bytes(digest))
        return all(self.store.exists(item["digest"]) for item in manifest.get("files", {}).values())

    def store_entry(self, entry: CacheEntry, *, replace_tag: str | None = None, force: bool = False) -> bool:
        """Write ``entry``: create-only, or replacing the version ``replace_tag`` (compare-and-swap),
        or, with ``force``, over whatever is there. Returns whether this call wrote it (False: another
        run's entry for the same fingerprint is there, which is as good)."""
        key = entry_key(entry.pipeline, entry.step, entry.fingerprint)
        if replace_tag is not None:
            return self.store.write_document(key, entry.to_json(), if_match=replace_tag)
        if force:
            return self.store.write_document(key, entry.to_json())
        return self.store.write_document(key, entry.to_json(), create_only=True)

    def keys(self, pipeline: str | None = None, step: str | None = None) -> list[str]:
        """The entry keys, of one pipeline (and step) if given."""
        prefix = CACHE_PREFIX
        if pipeline:
            prefix += f"{pipeline}/"
            if step:
                prefix += f"{step}/"
        keys = self.store.list_documents(prefix)
        if step and not pipeline:
            keys = [key for key in keys if key.split("/")[2:3] == [step]]
        return keys

    def entries(
        self, pipeline: str | None = None, step: str | None = None
    ) -> list[tuple[str, CacheEntry | None]]:
        """Each entry with its key; None for an entry that cannot be read."""
        result: list[tuple[str, CacheEntry | None]] = []
        for key in self.keys(pipeline, step):
            try:
                result.append((key, CacheEntry.from_json(self.store.read_document(key))))
            except (ArtifactError, ValueError, KeyError, TypeError):
                result.append((key, None))
        return result

    def clear(self, pipeline: str | None = None, step: str | None = None) -> int:
        """Remove the entries (of one pipeline, and step); the artifacts stay. Returns how many."""
        return sum(1 for key in self.keys(pipeline, step) if self.store.delete_document(key))
