"""A registered model version: its record, and the checks of group names, versions and statuses."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.exceptions import ArtifactError, RegistryError
from airflow_provider_mlpipe.model.steps import APPROVAL_STATUSES

RECORD_FORMAT = 1
# Starting with a letter or digit rules out "." and ".."; no "/" means one folder per group.
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_VERSION = 99_999_999


def check_group(group: object) -> str:
    """Return ``group`` if it is a valid model group name, else raise RegistryError.

    :param group: letters, digits and ``-_.``, starting with a letter or digit, at most 128 long.
    """
    if not isinstance(group, str) or not GROUP_NAME.fullmatch(group):
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


def check_version(group: str, version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise RegistryError(f"model group {group!r}: invalid version {version!r}, expected a number from 1")
    return version


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
    :param status_history: ``{"status", "at", "description"}`` for each status, oldest first
        (changes also carry their ``change_id``).
    :param idempotency_key: the key the version was registered with, if any.
    :param registration_id: unique per registration call: recognises a retried write of its own.
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
    idempotency_key: str | None = None
    registration_id: str | None = None

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
                idempotency_key=data.get("idempotency_key"),
                registration_id=data.get("registration_id"),
            )
            check_group(version.group)
            check_version(version.group, version.version)
            check_status(version.approval_status)
            ArtifactRef.from_dict(version.model)
        except (KeyError, TypeError, AttributeError, ArtifactError) as error:
            raise RegistryError(f"invalid model version record: {error}") from None
        return version
