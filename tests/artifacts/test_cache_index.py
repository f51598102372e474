"""The cache index in the store, on a local folder and on S3: create-only entries (two runs racing on
one key both succeed, one entry remains), misses for bad entries, listing and clearing."""

from __future__ import annotations

import threading

from airflow_provider_mlpipe.artifacts.store import ArtifactStore
from airflow_provider_mlpipe.cache import CacheEntry, StepCache, entry_key

FINGERPRINT = "sha256:" + "ab" * 32


def entry_for(store: ArtifactStore, run_id: str, data: bytes = b"value") -> CacheEntry:
    blob = store.put_bytes(data)
    ref = {"uri": blob.uri, "digest": blob.digest, "type": "json", "size": blob.size, "metadata": {}}
    return CacheEntry("pipe", "Step", FINGERPRINT, run_id, "2030-01-01T00:00:00+00:00", {"result": ref}, {})


def test_racing_writers_of_one_key_both_succeed_and_one_entry_remains(store: ArtifactStore):
    cache = StepCache(store)
    entries = [entry_for(store, f"run-{index}", b"%d" % index) for index in range(8)]
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(entries))

    def write(entry: CacheEntry) -> None:
        barrier.wait()
        try:
            results.append(cache.store_entry(entry))
        except BaseException as error:  # a racer must never fail
            errors.append(error)

    threads = [threading.Thread(target=write, args=(entry,)) for entry in entries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and sorted(results) == [False] * 7 + [True]
    assert cache.keys("pipe") == [entry_key("pipe", "Step", FINGERPRINT)]
    found = cache.lookup("pipe", "Step", FINGERPRINT)
    assert found.hit and found.entry.run_id in {entry.run_id for entry in entries}


def test_bad_entries_are_misses_with_a_reason(store: ArtifactStore):
    cache = StepCache(store)
    assert cache.lookup("pipe", "Step", FINGERPRINT).reason == "no entry for this fingerprint"

    key = entry_key("pipe", "Step", FINGERPRINT)
    store.write_document(key, b"\x00garbage")
    corrupt = cache.lookup("pipe", "Step", FINGERPRINT)
    assert not corrupt.hit and "corrupt" in corrupt.reason and corrupt.replace_tag

    # A miss found corrupt is replaced by the next result (compare-and-swap on what was read).
    assert cache.store_entry(entry_for(store, "run-1"), replace_tag=corrupt.replace_tag)
    assert cache.lookup("pipe", "Step", FINGERPRINT).entry.run_id == "run-1"

    # An entry pointing at a blob the store does not have.
    missing = entry_for(store, "run-2")
    gone = dict(missing.outputs["result"], digest="sha256:" + "cd" * 32)
    store.write_document(key, CacheEntry(**{**missing.__dict__, "outputs": {"result": gone}}).to_json())
    orphaned = cache.lookup("pipe", "Step", FINGERPRINT)
    assert not orphaned.hit and "are gone" in orphaned.reason


def test_expired_entries_are_misses(store: ArtifactStore):
    import pendulum

    cache = StepCache(store)
    cache.store_entry(entry_for(store, "run-1"))
    now = pendulum.datetime(2030, 1, 31, 0, 0, 1)
    assert not cache.lookup("pipe", "Step", FINGERPRINT, expire_after=pendulum.duration(days=30), now=now).hit
    assert cache.lookup("pipe", "Step", FINGERPRINT, expire_after=pendulum.duration(days=31), now=now).hit


def test_entries_are_listed_and_cleared_by_pipeline_and_step(store: ArtifactStore):
    cache = StepCache(store)
    cache.store_entry(entry_for(store, "run-1"))
    other = CacheEntry(**{**entry_for(store, "run-2").__dict__, "step": "Other"})
    cache.store_entry(other)
    store.write_document("cache/pipe/Broken/" + "ef" * 32 + ".json", b"[]")

    listed = {key: entry for key, entry in cache.entries("pipe")}
    assert len(listed) == 3 and sum(entry is None for entry in listed.values()) == 1
    assert [key.split("/")[2] for key in cache.keys(step="Other")] == ["Other"]
    assert cache.clear("pipe", "Other") == 1
    assert cache.clear() == 2
    assert cache.keys() == []
    assert store.exists(other.outputs["result"]["digest"])  # the artifacts stay
