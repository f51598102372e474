"""The model registry, against a local folder and S3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.registry import ModelRegistry, ModelVersion
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.serializers import save_value
from airflow_provider_mlpipe.artifacts.store import ArtifactStore
from airflow_provider_mlpipe.exceptions import RegistryError

from .helpers import store_url_and_env


@pytest.fixture
def model(store: ArtifactStore, tmp_path: Path) -> ArtifactRef:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text('{"mean": 2.0}')
    return save_value(store, folder)


def test_versions_are_numbered_from_one_and_listed_in_order(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    first = registry.register("abalone", model, metrics={"mse": {"value": 4.5}}, description="first try")
    second = registry.register("abalone", model)
    third = registry.register("abalone", model, approval_status="Approved")

    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert [version.version for version in registry.list_versions("abalone")] == [1, 2, 3]
    assert registry.list_groups() == ["abalone"]
    assert store.list_documents("registry/") == [
        "registry/abalone/00000001.json",
        "registry/abalone/00000002.json",
        "registry/abalone/00000003.json",
    ]

    stored = registry.get("abalone", 1)
    assert stored == first
    assert stored.approval_status == "PendingManualApproval"
    assert stored.metrics == {"mse": {"value": 4.5}}
    assert stored.description == "first try"
    assert stored.model == model.to_dict()
    assert stored.model_ref == model
    assert datetime.fromisoformat(stored.created_at).tzinfo is not None
    assert stored.status_history == [
        {"status": "PendingManualApproval", "at": stored.created_at, "description": "first try"}
    ]
    assert registry.get("abalone", 3).approval_status == "Approved"


def test_groups_are_separate(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    registry.register("zeta", model)
    registry.register("alpha.v2", model)
    registry.register("alpha.v2", model)
    assert registry.list_groups() == ["alpha.v2", "zeta"]
    assert [version.version for version in registry.list_versions("zeta")] == [1]
    assert [version.version for version in registry.list_versions("alpha.v2")] == [1, 2]


def test_approve_and_reject_are_recorded_and_persisted(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    registry.register("abalone", model)

    approved = registry.set_status("abalone", 1, "Approved", description="mse below 5")
    assert approved.approval_status == "Approved"
    rejected = registry.set_status("abalone", 2, "Rejected")

    # A fresh registry (another process, the CLI) sees the changes.
    reread = ModelRegistry(store)
    assert reread.get("abalone", 1).approval_status == "Approved"
    assert reread.get("abalone", 2) == rejected
    history = reread.get("abalone", 1).status_history
    assert [(entry["status"], entry["description"]) for entry in history] == [
        ("PendingManualApproval", None),
        ("Approved", "mse below 5"),
    ]
    assert reread.get("abalone", 1).updated_at == history[-1]["at"]

    back = reread.set_status("abalone", 1, "Rejected", description="drift")
    assert [entry["status"] for entry in back.status_history] == [
        "PendingManualApproval",
        "Approved",
        "Rejected",
    ]


def test_latest_with_and_without_a_status(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    for _ in range(3):
        registry.register("abalone", model)
    latest = registry.latest("abalone")
    assert latest is not None and latest.version == 3
    assert registry.latest("abalone", approval_status="Approved") is None
    registry.set_status("abalone", 2, "Approved")
    approved = registry.latest("abalone", approval_status="Approved")
    assert approved is not None and approved.version == 2


def test_unknown_group_and_version_name_them(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    with pytest.raises(RegistryError, match="no model group 'abalone'"):
        registry.list_versions("abalone")
    with pytest.raises(RegistryError, match="no model group 'abalone'"):
        registry.get("abalone", 1)
    with pytest.raises(RegistryError, match="no model group 'abalone'"):
        registry.latest("abalone")

    registry.register("abalone", model)
    registry.register("abalone", model)
    with pytest.raises(RegistryError, match=r"model group 'abalone' has no version 99 \(its versions: 1-2\)"):
        registry.get("abalone", 99)
    with pytest.raises(RegistryError, match="'abalone' has no version 99"):
        registry.set_status("abalone", 99, "Approved")
    with pytest.raises(RegistryError, match="'abalone'.*invalid version 0"):
        registry.get("abalone", 0)
    assert registry.list_groups() == ["abalone"]


@pytest.mark.parametrize("status", ["approved", "Deleted", "", None])
def test_bad_statuses_are_refused(store: ArtifactStore, model: ArtifactRef, status: Any):
    registry = ModelRegistry(store)
    with pytest.raises(RegistryError, match="invalid approval status"):
        registry.register("abalone", model, approval_status=status)
    registry.register("abalone", model)
    with pytest.raises(RegistryError, match="invalid approval status"):
        registry.set_status("abalone", 1, status)
    assert registry.get("abalone", 1).approval_status == "PendingManualApproval"


@pytest.mark.parametrize(
    "group",
    [
        "../x",
        "..",
        ".",
        "a/b",
        "a\\b",
        "",
        ".hidden",
        "-dash-first",
        "x" * 129,
        "a b",
        "abalone/../../etc",
        None,
    ],
)
def test_bad_group_names_are_refused_before_anything_is_written(
    store: ArtifactStore, model: ArtifactRef, group: Any
):
    registry = ModelRegistry(store)
    before = store.list_documents()
    with pytest.raises(RegistryError, match="invalid model group name"):
        registry.register(group, model)
    with pytest.raises(RegistryError, match="invalid model group name"):
        registry.list_versions(group)
    with pytest.raises(RegistryError, match="invalid model group name"):
        registry.get(group, 1)
    assert store.list_documents() == before


def test_the_model_must_be_a_reference_and_metadata_json(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    with pytest.raises(RegistryError, match="must be an ArtifactRef"):
        registry.register("abalone", model.to_dict())  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="JSON values"):
        registry.register("abalone", model, metadata={"when": object()})
    assert registry.list_groups() == []


def test_a_taken_version_number_is_skipped(
    store: ArtifactStore, model: ArtifactRef, monkeypatch: pytest.MonkeyPatch
):
    """What a concurrent registration looks like: the number read as free was taken meanwhile."""
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    registry.register("abalone", model)
    # Another process's registration, which this one did not see when it listed the versions.
    monkeypatch.setattr(registry, "_highest_version", lambda group: 0)
    third = registry.register("abalone", model, description="third")
    assert third.version == 3
    assert [version.description for version in registry.list_versions("abalone")] == [None, None, "third"]


def test_a_corrupted_record_is_a_registry_error(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    store.write_document("registry/abalone/00000001.json", b"{not json")
    with pytest.raises(RegistryError, match="'abalone' version 1: unreadable record"):
        registry.get("abalone", 1)
    store.write_document("registry/abalone/00000001.json", json.dumps({"group": "abalone"}).encode())
    with pytest.raises(RegistryError, match="invalid model version record"):
        registry.get("abalone", 1)
    record = registry.register("abalone", model).to_dict()
    store.write_document("registry/abalone/00000001.json", json.dumps({**record, "version": 2}).encode())
    with pytest.raises(RegistryError, match="the record says"):
        registry.get("abalone", 1)


def test_model_version_round_trips_through_its_dict(model: ArtifactRef):
    version = ModelVersion("g", 4, "Approved", model.to_dict(), metrics={"a": 1}, metadata={"b": 2})
    assert ModelVersion.from_dict(json.loads(json.dumps(version.to_dict()))) == version


def test_concurrent_registrations_in_threads_get_distinct_versions(store: ArtifactStore):
    # Both stores' create-only writes are atomic: os.link locally, If-None-Match: * on S3.
    model = save_value(store, {"weights": [1, 2, 3]})
    barrier = threading.Barrier(6)

    def register_three(worker: int) -> list[int]:
        registry = ModelRegistry(store)
        barrier.wait()
        return [registry.register("abalone", model, metadata={"worker": worker}).version for _ in range(3)]

    with ThreadPoolExecutor(6) as pool:
        allocated = [number for numbers in pool.map(register_three, range(6)) for number in numbers]
    assert sorted(allocated) == list(range(1, 19))
    versions = ModelRegistry(store).list_versions("abalone")
    assert [version.version for version in versions] == list(range(1, 19))
    assert sorted(version.metadata["worker"] for version in versions) == sorted(list(range(6)) * 3)


REGISTER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    url, ref, go, key, count = sys.argv[1:]
    registry = ModelRegistry(store_from_url(url))
    model = ArtifactRef.from_dict(json.loads(ref))
    while not pathlib.Path(go).exists():  # start together, to overlap the registrations
        time.sleep(0.002)
    versions = [registry.register("abalone", model, idempotency_key=key or None).version for _ in range(int(count))]
    print(" ".join(str(version) for version in versions))
    """
)


def run_registering_processes(
    store: ArtifactStore, model: ArtifactRef, tmp_path: Path, *, processes: int, count: int, key: str = ""
) -> list[int]:
    url, env = store_url_and_env(store)
    go = tmp_path / "go"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER, url, json.dumps(model.to_dict()), str(go), key, str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.5)  # let the interpreters start, so that the registrations overlap
    go.touch()
    allocated = []
    for process in started:
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
        allocated.extend(int(number) for number in stdout.strip().splitlines()[-1].split())
    return allocated


def test_concurrent_registrations_in_processes_get_distinct_versions(store: ArtifactStore, tmp_path: Path):
    model = save_value(store, {"weights": [1]})
    allocated = run_registering_processes(store, model, tmp_path, processes=4, count=3)
    assert sorted(allocated) == list(range(1, 13))
    assert [version.version for version in ModelRegistry(store).list_versions("abalone")] == list(
        range(1, 13)
    )


# -- idempotency -----------------------------------------------------------------------------------
def test_registering_again_with_the_same_key_returns_the_first_version(
    store: ArtifactStore, model: ArtifactRef
):
    registry = ModelRegistry(store)
    first = registry.register("abalone", model, idempotency_key="abalone/run-1/RegisterModel")
    other = registry.register("abalone", model, idempotency_key="abalone/run-2/RegisterModel")
    again = ModelRegistry(store).register("abalone", model, idempotency_key="abalone/run-1/RegisterModel")
    assert (first.version, other.version, again.version) == (1, 2, 1)
    assert again == first
    assert [version.version for version in registry.list_versions("abalone")] == [1, 2]
    assert registry.get("abalone", 1).idempotency_key == "abalone/run-1/RegisterModel"
    assert registry.list_groups() == ["abalone"]  # the markers are not groups


def test_a_registration_that_died_after_taking_its_number_is_completed_by_its_retry(
    store: ArtifactStore, model: ArtifactRef
):
    """The first try left its marker for version 2 and died before writing the version."""
    from airflow_provider_mlpipe.artifacts.registry import _markers_prefix

    registry = ModelRegistry(store)
    registry.register("abalone", model)
    store.write_document(_markers_prefix("abalone", "run-7/Register") + "00000002", b"{}")
    registry.register("abalone", model)  # another registration meanwhile: 2 looks free to it
    retried = registry.register("abalone", model, idempotency_key="run-7/Register")
    # Version 2 was taken by the other registration: the retry gets a version of its own, once.
    assert retried.version == 3
    assert registry.register("abalone", model, idempotency_key="run-7/Register").version == 3
    assert [version.version for version in registry.list_versions("abalone")] == [1, 2, 3]


def test_concurrent_registrations_with_one_key_make_one_version(store: ArtifactStore, tmp_path: Path):
    """A task that runs twice at once (a zombie and its retry): one version between them."""
    model = save_value(store, {"weights": [2]})
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    allocated = run_registering_processes(
        store, model, tmp_path, processes=4, count=2, key="abalone/run-1/Register"
    )
    assert set(allocated) == {2}
    assert [version.version for version in registry.list_versions("abalone")] == [1, 2]


def retry_the_first_successful_put(store: S3ArtifactStore, operation: str, matching: str) -> list[str]:
    """Make botocore send the first successful PutObject whose key contains ``matching`` again,
    as it does when the answer to a write that succeeded is lost. Returns the keys retried."""
    retried: list[str] = []

    def needs_retry(request_dict: dict, response: Any = None, **_: Any) -> float | None:
        key = request_dict.get("url_path", "")
        if not retried and matching in key and response is not None and response[0].status_code == 200:
            retried.append(key)
            return 0.0  # retry now
        return None

    store.s3().meta.events.register_first(f"needs-retry.s3.{operation}", needs_retry)
    return retried


def test_a_registration_whose_write_is_retried_after_it_succeeded_adds_one_version(
    s3_conn: str, s3_bucket: str
):
    store = S3ArtifactStore(s3_bucket, "reg", aws_conn_id=s3_conn)
    model = save_value(store, {"weights": [3]})
    registry = ModelRegistry(store)
    retried = retry_the_first_successful_put(store, "PutObject", "00000001.json")
    version = registry.register("abalone", model)
    assert retried  # the write was sent twice; the second one found the first one's version
    assert version.version == 1
    assert [v.version for v in registry.list_versions("abalone")] == [1]


# -- approvals -------------------------------------------------------------------------------------
def test_concurrent_status_changes_lose_no_update(store: ArtifactStore, model: ArtifactRef):
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    barrier = threading.Barrier(6)

    def change(worker: int) -> None:
        barrier.wait()
        ModelRegistry(store).set_status(
            "abalone", 1, ("Approved", "Rejected")[worker % 2], description=f"w{worker}"
        )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(change, range(6)))
    history = registry.get("abalone", 1).status_history
    assert history[0]["status"] == "PendingManualApproval"
    assert sorted(entry["description"] for entry in history[1:]) == [f"w{index}" for index in range(6)]
    assert registry.get("abalone", 1).approval_status == history[-1]["status"]


SET_STATUS = textwrap.dedent(
    """
    import pathlib, sys, time
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry
    from airflow_provider_mlpipe.artifacts.store import store_from_url

    url, go, name = sys.argv[1:]
    registry = ModelRegistry(store_from_url(url))
    while not pathlib.Path(go).exists():
        time.sleep(0.002)
    for round_ in range(3):
        registry.set_status("abalone", 1, "Approved", description=f"{name}-{round_}")
    """
)


def test_concurrent_status_changes_from_processes_lose_no_update(
    store: ArtifactStore, model: ArtifactRef, tmp_path: Path
):
    ModelRegistry(store).register("abalone", model)
    url, env = store_url_and_env(store)
    go = tmp_path / "go"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", SET_STATUS, url, str(go), f"p{index}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(4)
    ]
    time.sleep(0.5)
    go.touch()
    for process in started:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
    descriptions = [
        entry["description"] for entry in ModelRegistry(store).get("abalone", 1).status_history[1:]
    ]
    assert sorted(descriptions) == sorted(f"p{index}-{round_}" for index in range(4) for round_ in range(3))


def test_a_status_change_retried_after_it_succeeded_is_recorded_once(s3_conn: str, s3_bucket: str):
    store = S3ArtifactStore(s3_bucket, "reg", aws_conn_id=s3_conn)
    model = save_value(store, {"weights": [4]})
    registry = ModelRegistry(store)
    registry.register("abalone", model)
    retried = retry_the_first_successful_put(store, "PutObject", "00000001.json")
    changed = registry.set_status("abalone", 1, "Approved", description="looks good")
    assert retried
    history = registry.get("abalone", 1).status_history
    assert [entry["status"] for entry in history] == ["PendingManualApproval", "Approved"]
    assert changed.approval_status == "Approved"
