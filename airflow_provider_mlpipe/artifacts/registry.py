"""The model registry: numbered model versions per group, with an approval status, in the artifact store.

Each version is one JSON document, ``registry/<group>/<version as 8 digits>.json``. The model itself
is not copied: the version holds its artifact reference. Version numbers are allocated with
create-only writes, so concurrent registrations in one group never get the same number.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.store import ArtifactNotFoundError, ArtifactStore
from airflow_provider_mlpipe.exceptions import ArtifactError, RegistryError
from airflow_provider_mlpipe.model.steps import APPROVAL_STATUSES

REGISTRY_PREFIX = "registry/"
RECORD_FORMAT = 1
# Starting with a letter or digit rules out "." and ".."; no "/" means one folder per group.
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION_FILE = re.compile(r"(\d{8})\.json")
_MAX_VERSION = 99_999_999
# Each failed attempt means another writer took that number; this bounds a pathological loop.
_MAX_ALLOCATION_ATTEMPTS = 1000


def check_group(group: object) -> str:
    """Return ``group`` if it is a valid model group name, else raise RegistryError.

    :param group: letters, digits and ``-_.``, starting with a letter or digit, at most 128 long.
    """
    if not isinstance(group, str) or not _GROUP.fullmatch(group):
        raise RegistryError(
            f"invalid model group name {group!r}: use letters, digits and '-_.', starting with a letter or "
            "digit (at most 128 characters)"
        )
    return group


def check_status(status: object) -> str:
    """Return ``status`` if it is an approval status, else raise RegistryError.

    :param status: one of ``PendingManualApproval``, ``Approved``, ``Rejected``.
    """
    if status not in APPROVAL_STATUSES:
        raise RegistryError(
            f"invalid approval status {status!r}: expected one of {', '.join(APPROVAL_STATUSES)}"
        )
    return str(status)


def _check_version(group: str, version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= _MAX_VERSION:
        raise RegistryError(f"model group {group!r}: invalid version {version!r}, expected a number from 1")
    return version


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version_key(group: str, version: int) -> str:
    return f"{REGISTRY_PREFIX}{group}/{version:08d}.json"


@dataclass
class ModelVersion:
    """One registered version of a model.

    :param group: the model group (``model_package_group_name``).
    :param version: 1, 2, ... within the group.
    :param approval_status: ``PendingManualApproval``, ``Approved`` or ``Rejected``.
    :param model: the model's artifact reference, as a dict (:meth:`ArtifactRef.to_dict`).
    :param metrics: the model's metrics, if any.
    :param metadata: where it comes from (pipeline, execution, step, parameters...).
    :param description: free text.
    :param created_at: ISO 8601 UTC time of registration.
    :param updated_at: ISO 8601 UTC time of the last status change.
    :param status_history: ``{"status", "at", "description"}`` for each status, oldest first.
    """

    group: str
    version: int
    approval_status: str
    model: dict[str, Any]
    metrics: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    created_at: str = ""
    updated_at: str = ""
    status_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_ref(self) -> ArtifactRef:
        """The model's artifact reference."""
        return ArtifactRef.from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        """The version as a JSON-able dict (what is stored)."""
        return {"mlpipe_registry": RECORD_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelVersion:
        """Build a version from :meth:`to_dict` output; raise RegistryError if ``data`` is malformed.

        :param data: the stored dict.
        """
        try:
            version = cls(
                group=data["group"],
                version=data["version"],
                approval_status=data["approval_status"],
                model=data["model"],
                metrics=data.get("metrics"),
                metadata=data.get("metadata") or {},
                description=data.get("description"),
                created_at=data.get("created_at", ""),
                updated_at=data.get("updated_at", ""),
                status_history=list(data.get("status_history") or []),
            )
            check_group(version.group)
            _check_version(version.group, version.version)
            check_status(version.approval_status)
            ArtifactRef.from_dict(version.model)
        except (KeyError, TypeError, AttributeError, ArtifactError) as error:
            raise RegistryError(f"invalid model version record: {error}") from None
        return version


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
    ) -> ModelVersion:
        """Record a new version of ``group`` (numbered one above the highest) and return it.

        :param group: the model group; created by its first version.
        :param model: the model's artifact reference.
        :param approval_status: the initial status.
        :param metrics: the model's metrics (JSON values).
        :param metadata: more facts about the version (JSON values).
        :param description: free text.
        """
        check_group(group)
        check_status(approval_status)
        if not isinstance(model, ArtifactRef):
            raise RegistryError(f"model group {group!r}: the model must be an ArtifactRef, got {model!r}")
        now = _now()
        candidate = self._highest_version(group) + 1
        for _ in range(_MAX_ALLOCATION_ATTEMPTS):
            version = ModelVersion(
                group=group,
                version=_check_version(group, candidate),
                approval_status=approval_status,
                model=model.to_dict(),
                metrics=dict(metrics) if metrics is not None else None,
                metadata=dict(metadata or {}),
                description=description,
                created_at=now,
                updated_at=now,
                status_history=[{"status": approval_status, "at": now, "description": description}],
            )
            # Create-only: if another registration took this number meanwhile, try the next one.
            if self.store.write_document(
                _version_key(group, candidate), self._encode(version), create_only=True
            ):
                return version
            candidate += 1
        raise RegistryError(
            f"model group {group!r}: could not allocate a version number after {_MAX_ALLOCATION_ATTEMPTS} attempts"
        )

    def list_groups(self) -> list[str]:
        """The names of the groups that have at least one version, sorted."""
        groups = set()
        for key in self.store.list_documents(REGISTRY_PREFIX):
            parts = key[len(REGISTRY_PREFIX) :].split("/")
            if len(parts) == 2 and _GROUP.fullmatch(parts[0]) and _VERSION_FILE.fullmatch(parts[1]):
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
        _check_version(group, version)
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

        The change is appended to the version's ``status_history``. Two changes of the same version
        at the same moment: the last write wins (status changes are rare, manual decisions).

        :param group: the model group.
        :param version: the version number.
        :param status: the new status.
        :param description: why (recorded in the history).
        :raises RegistryError: no such group or version, or an unknown status.
        """
        check_status(status)
        current = self.get(group, version)
        now = _now()
        current.approval_status = status
        current.updated_at = now
        current.status_history.append({"status": status, "at": now, "description": description})
        self.store.write_document(_version_key(group, version), self._encode(current))
        return current

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
        data = self.store.read_document(_version_key(group, version))
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
