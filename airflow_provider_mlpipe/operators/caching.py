"""Step caching as a step's task does it: look the fingerprint up before any work, take the cached
outputs on a hit, store the new outputs after a miss (see :mod:`airflow_provider_mlpipe.cache`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.cache import CacheEntry, CacheLookup, StepCache, forced_miss, utcnow
from airflow_provider_mlpipe.exceptions import MlpipeError

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.fingerprint import StepFingerprint
    from airflow_provider_mlpipe.model.cache import CacheConfig
    from airflow_provider_mlpipe.operators.base import StepRuntime

log = logging.getLogger(__name__)


def cache_hit_note(source_run_id: str, fingerprint: str) -> str:
    """The note of a step whose outputs came from the cache."""
    return (
        f"cache hit: outputs of run {source_run_id} (fingerprint {fingerprint.removeprefix('sha256:')[:12]})"
    )


@dataclass
class StepCaching:
    """Caching for one run of one step.

    :param config: the step's effective cache settings (caching is on).
    :param forced: the run asked to ignore the cache (``no_cache``): always a miss, and the new outputs
        replace the entry.
    """

    runtime: StepRuntime
    fingerprint: StepFingerprint
    config: CacheConfig
    forced: bool
    lookup_result: CacheLookup | None = None

    @classmethod
    def for_run(cls, runtime: StepRuntime, fingerprint: StepFingerprint) -> StepCaching | None:
        """The caching of this run of the step, or None when caching is off for it."""
        config = runtime.pipeline.cache_config_of(runtime.step)
        if config is None:
            return None
        conf = getattr(runtime.context.get("dag_run"), "conf", None)
        return cls(runtime, fingerprint, config, forced=forced_miss(conf))

    @property
    def index(self) -> StepCache:
        return StepCache(self.runtime.store)

    def lookup(self) -> CacheEntry | None:
        """The cached result to take, or None (the reason is logged)."""
        step = self.runtime.step
        if self.forced:
            log.info("Cache of step %s ignored: the run asked for no cache (no_cache)", step.name)
            return None
        self.lookup_result = self.index.lookup(
            self.runtime.pipeline.name, step.name, self.fingerprint.value, expire_after=self.config.expiry()
        )
        if self.lookup_result.entry is None:
            log.info("Cache miss for step %s: %s", step.name, self.lookup_result.reason)
        return self.lookup_result.entry

    def hit_fields(self, entry: CacheEntry) -> dict[str, Any]:
        """What a record says of a cache hit: where the outputs come from."""
        log.info(
            "Cache hit for step %s: outputs of run %s (stored %s, fingerprint %s); the step does no work",
            self.runtime.step.name,
            entry.run_id,
            entry.created_at,
            self.fingerprint.value,
        )
        origin = entry.origin_run_id or entry.run_id
        return {
            "cache": {
                "enabled": True,
                "hit": True,
                "source_run_id": entry.run_id,
                "created_at": entry.created_at,
                "note": cache_hit_note(entry.run_id, self.fingerprint.value),
            },
            "source_run_id": entry.run_id,
            "origin_run_id": origin,
        }

    def store(self, outputs: Mapping[str, ArtifactRef], metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Keep this run's outputs under the fingerprint; return what the record says of the cache.

        A failure to write the entry is logged, never a failure of the step: its outputs are fine.
        """
        run_id = str(self.runtime.context.get("run_id"))
        entry = CacheEntry(
            pipeline=self.runtime.pipeline.name,
            step=self.runtime.step.name,
            fingerprint=self.fingerprint.value,
            run_id=run_id,
            created_at=utcnow().isoformat(timespec="seconds"),
            outputs={name: ref.to_dict() for name, ref in outputs.items()},
            metadata=dict(metadata),
        )
        replace = self.lookup_result.replace_tag if self.lookup_result is not None else None
        try:
            stored = self.index.store_entry(entry, replace_tag=replace, force=self.forced)
        except MlpipeError as error:
            log.warning("Cache entry of step %s not stored: %s", entry.step, error)
            stored = False
        if not stored:
            log.info(
                "Cache entry of step %s not written: another run stored this fingerprint first", entry.step
            )
        return {"cache": {"enabled": True, "hit": False, "stored": stored, "forced_miss": self.forced}}
