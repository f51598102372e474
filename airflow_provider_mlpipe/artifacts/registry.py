"""The model registry: numbered model versions per group, with an approval status, in the artifact store.

Each version is one JSON document, ``registry/<group>/<version as 8 digits>.json``. The model itself
is not copied: the version holds its artifact reference. The guarantees hold on a local folder and
on S3 alike, since both rest on the store's atomic conditional writes:

- distinct versions: numbers are allocated with create-only writes (``If-None-Match: *`` on S3), so
  concurrent registrations in one group never get the same number; a taken number means "try the
  next one".
- idempotent registration: a registration may carry an idempotency key (a step passes its pipeline,
  run and step). Before taking a number it leaves a marker ``registry/<group>/keys/<hash>/<number>``,
  and a later registration with the same key (a retried task, a write retried after a lost answer)
  finds the marker and returns that version instead of adding one. A create-only write refused
  because *this* registration's own earlier attempt succeeded is recognised by the record's
  ``registration_id``.
- no lost approval: a status change is a compare-and-swap (``If-Match`` on the ETag on S3, a lock on
  the document file locally), retried from a fresh read when another change came first; each change
  has an id, so a retried change is applied once.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlpipe.artifacts.model_version import (
    GROUP_NAME,
    ModelVersion,
    check_group,
    check_status,
    check_version,
)
from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.store import ArtifactNotFoundError, ArtifactStore
from airflow_provider_mlpipe.exceptions import RegistryError

__all__ = ["REGISTRY_PREFIX", "ModelRegistry", "ModelVersion", "check_group", "check_status"]

REGISTRY_PREFIX = "registry/"
_VERSION_FILE = re.compile(r"(\d{8})\.json")
# Each failed attempt means another writer took that number; this bounds a pathological loop.
_MAX_ALLOCATION_ATTEMPTS = 1000
# Each failed compare-and-swap means another change came first; each round one change wins.
_MAX_STATUS_ATTEMPTS = 100


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version_key(group: str, version: int) -> str:
    return f"{REGISTRY_PREFIX}{group}/{version:08d}.json"


def _markers_prefix(group: str, idempotency_key: str) -> str:
    """Where the markers of the registrations with this key are (a hash: keys may hold any text)."""
    return f"{REGISTRY_PREFIX}{group}/keys/{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}/"


class ModelRegistry:
    """Model versions kept as documents in an artifact store.

    :param store: the artifact store holding the registry.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def register(
        self,
        group: str,
        model: ArtifactRef,
        *,
        approval_status: str = "PendingManualApproval",
        metrics: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> ModelVersion:
        """Record a new version of ``group`` (numbered one above the highest) and return it.

        :param group: the model group; created by its first version.
        :param model: the model's artifact reference.
        :param approval_status: the initial status.
        :param metrics: the model's metrics (JSON values).
        :param metadata: more facts about the version (JSON values).
        :param description: free text.
        :param idempotency_key: registrations with the same key make one version: a repeated call
            returns the version the first one made (e.g. ``"<pipeline>/<run id>/<step>"``).
        """
        check_group(group)
        check_status(approval_status)
        if not isinstance(model, ArtifactRef):
            raise RegistryError(f"model group {group!r}: the model must be an ArtifactRef, got {model!r}")
        if idempotency_key is not None and (not isinstance(idempotency_key, str) or not idempotency_key):
            raise RegistryError(f"model group {group!r}: invalid idempotency key {idempotency_key!r}")
        now = _now()
        registration_id = uuid.uuid4().hex

        def version_numbered(number: int) -> ModelVersion:
            return ModelVersion(
                group=group,
                version=check_version(group, number),
                approval_status=approval_status,
                model=model.to_dict(),
                metrics=dict(metrics) if metrics is not None else None,
                metadata=dict(metadata or {}),
                description=description,
                created_at=now,
                updated_at=now,
                status_history=[{"status": approval_status, "at": now, "description": description}],
                idempotency_key=idempotency_key,
                registration_id=registration_id,
            )

        markers = _markers_prefix(group, idempotency_key) if idempotency_key is not None else None
        if markers is not None:
            # Numbers taken (or being taken) by an earlier registration with this key, oldest first.
            # Trying to create each one either finds that registration's version or, if it never got
            # written (its writer died), makes it now: both end with one version for the key.
            for number in self._marked_numbers(markers):
                found = self._create_or_find(version_numbered(number))
                if found is not None:
                    return found
        candidate = self._highest_version(group) + 1
        for _ in range(_MAX_ALLOCATION_ATTEMPTS):
            if markers is not None:
                # The marker first: a registration with the same key that starts now finds it.
                self.store.write_document(f"{markers}{candidate:08d}", b"{}")
            found = self._create_or_find(version_numbered(candidate))
            if found is not None:
                return found
            candidate += 1
        raise RegistryError(
            f"model group {group!r}: could not allocate a version number after {_MAX_ALLOCATION_ATTEMPTS} attempts"
        )

    def _create_or_find(self, version: ModelVersion) -> ModelVersion | None:
        """Create ``version`` if its number is free; if it is taken by the same registration (the
        same registration id or idempotency key), return the stored one; else None."""
        key = _version_key(version.group, version.version)
        if self.store.write_document(key, self._encode(version), create_only=True):
            return version
        stored = self._read(version.group, version.version)
        same_call = stored.registration_id == version.registration_id
        same_key = version.idempotency_key is not None and stored.idempotency_key == version.idempotency_key
        return stored if same_call or same_key else None

    def _marked_numbers(self, markers: str) -> list[int]:
        numbers = []
        for key in self.store.list_documents(markers):
            tail = key[len(markers) :]
            if tail.isdigit() and len(tail) == 8:
                numbers.append(int(tail))
        return sorted(numbers)

    def list_groups(self) -> list[str]:
        """The names of the groups that have at least one version, sorted."""
        groups = set()
        for key in self.store.list_documents(REGISTRY_PREFIX):
            parts = key[len(REGISTRY_PREFIX) :].split("/")
            if len(parts) == 2 and GROUP_NAME.fullmatch(parts[0]) and _VERSION_FILE.fullmatch(parts[1]):
                groups.add(parts[0])
        return sorted(groups)

    def list_versions(self, group: str) -> list[ModelVersion]:
        """The versions of ``group``, oldest first.

        :param group: the model group.
        :raises RegistryError: the group has no version.
        """
        numbers = self._version_numbers(group)
        if not numbers:
            raise RegistryError(self._no_group_message(group))
        return [self._read(group, number) for number in numbers]

    def get(self, group: str, version: int) -> ModelVersion:
        """One version of ``group``.

        :param group: the model group.
        :param version: the version number.
        :raises RegistryError: no such group or version.
        """
        check_group(group)
        check_version(group, version)
        try:
            return self._read(group, version)
        except ArtifactNotFoundError:
            numbers = self._version_numbers(group)
            if not numbers:
                raise RegistryError(self._no_group_message(group)) from None
            raise RegistryError(
                f"model group {group!r} has no version {version} (its versions: {_ranges(numbers)})"
            ) from None

    def latest(self, group: str, approval_status: str | None = None) -> ModelVersion | None:
        """The highest version of ``group``, or the highest with ``approval_status``; None if none has it.

        :param group: the model group.
        :param approval_status: only consider versions with this status.
        :raises RegistryError: the group has no version.
        """
        if approval_status is not None:
            check_status(approval_status)
        numbers = self._version_numbers(group)
        if not numbers:
            raise RegistryError(self._no_group_message(group))
        for number in reversed(numbers):
            version = self._read(group, number)
            if approval_status is None or version.approval_status == approval_status:
                return version
        return None

    def set_status(
        self, group: str, version: int, status: str, description: str | None = None
    ) -> ModelVersion:
        """Change the approval status of a version and return the updated version.

        The change is appended to the version's ``status_history``. It is a compare-and-swap on the
        version's record, retried from a fresh read when another change came first: concurrent
        changes are all recorded, in the order they were applied, and none is lost.

        :param group: the model group.
        :param version: the version number.
        :param status: the new status.
        :param description: why (recorded in the history).
        :raises RegistryError: no such group or version, an unknown status, or a record changed by
            others so often that the change could not be applied.
        """
        check_status(status)
        self.get(group, version)  # a clear error for an unknown group or version
        key = _version_key(group, version)
        change_id = uuid.uuid4().hex
        for attempt in range(_MAX_STATUS_ATTEMPTS):
            data, tag = self.store.read_document_tagged(key)
            current = self._decode(group, version, data)
            if any(entry.get("change_id") == change_id for entry in current.status_history):
                return current  # a retried write of this very change had in fact succeeded
            now = _now()
            current.approval_status = status
            current.updated_at = now
            current.status_history.append(
                {"status": status, "at": now, "description": description, "change_id": change_id}
            )
            if self.store.write_document(key, self._encode(current), if_match=tag):
                return current
            # Another change came first: back off a little (jittered), then apply on top of it.
            time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
        raise RegistryError(
            f"model group {group!r} version {version}: the status change to {status} could not be applied "
            f"after {_MAX_STATUS_ATTEMPTS} attempts (the record kept changing)"
        )

    # -- internals ---------------------------------------------------------------------------------
    def _version_numbers(self, group: str) -> list[int]:
        prefix = f"{REGISTRY_PREFIX}{check_group(group)}/"
        numbers = []
        for key in self.store.list_documents(prefix):
            match = _VERSION_FILE.fullmatch(key[len(prefix) :])
            if match:
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def _highest_version(self, group: str) -> int:
        numbers = self._version_numbers(group)
        return numbers[-1] if numbers else 0

    def _read(self, group: str, version: int) -> ModelVersion:
        return self._decode(group, version, self.store.read_document(_version_key(group, version)))

    @staticmethod
    def _decode(group: str, version: int, data: bytes) -> ModelVersion:
        try:
            record = ModelVersion.from_dict(json.loads(data))
        except ValueError as error:
            raise RegistryError(
                f"model group {group!r} version {version}: unreadable record ({error})"
            ) from None
        if (record.group, record.version) != (group, version):
            raise RegistryError(
                f"model group {group!r} version {version}: the record says group {record.group!r} "
                f"version {record.version}"
            )
        return record

    @staticmethod
    def _encode(version: ModelVersion) -> bytes:
        try:
            return json.dumps(version.to_dict(), sort_keys=True, indent=2).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise RegistryError(
                f"model group {version.group!r}: metrics and metadata must be JSON values ({error})"
            ) from None

    def _no_group_message(self, group: str) -> str:
        known = self.list_groups()
        return f"no model group {group!r} in the registry at {self.store.url} (groups: {', '.join(known) or 'none'})"


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``: a short list of versions for error messages."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(parts)
