"""The reference to a stored artifact: what a step's XCom carries instead of the data itself."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlpipe.exceptions import ArtifactError

#: The kinds of value an artifact can hold; each has its own serializer.
#: ``collection`` is a fan-out step's output: the references of each item's output, in item order.
ARTIFACT_TYPES = frozenset({"json", "numpy", "pandas", "file", "directory", "pickle", "collection"})

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is ``"sha256:<64 lowercase hex digits>"``, else raise ArtifactError.

    The digest names the blob's key in the store, so a strict check also stops a forged digest
    from reaching outside the store's ``objects/`` folder.

    :param digest: the value to check.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ArtifactError(
            f"invalid artifact digest {digest!r}: expected 'sha256:' and 64 lowercase hex digits"
        )
    return digest


@dataclass(frozen=True)
class ArtifactRef:
    """A small, JSON-able pointer to an artifact in the store.

    :param uri: where the blob is (``file:///...`` or ``s3://bucket/key``); informative, the store
        finds the blob by ``digest``.
    :param digest: ``"sha256:<hex>"`` of the blob (for a directory: of its manifest).
    :param type: one of ``json``, ``numpy``, ``pandas``, ``file``, ``directory``, ``pickle``,
        ``collection`` (a list of other artifacts' references).
    :param size: size of the content in bytes (for a directory: the sum of its files).
    :param metadata: small facts about the value (dtype and shape, rows and columns, file name...).
    """

    uri: str
    digest: str
    type: str
    size: int
    # Excluded from the hash: a dict is not hashable, and uri/digest/type/size identify the artifact.
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri:
            raise ArtifactError(f"invalid artifact uri {self.uri!r}: expected a non-empty string")
        check_digest(self.digest)
        if self.type not in ARTIFACT_TYPES:
            raise ArtifactError(
                f"invalid artifact type {self.type!r}: expected one of {', '.join(sorted(ARTIFACT_TYPES))}"
            )
        # bool is an int subclass; True is not a size.
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ArtifactError(f"invalid artifact size {self.size!r}: expected a non-negative integer")
        if not isinstance(self.metadata, dict):
            raise ArtifactError(f"invalid artifact metadata {self.metadata!r}: expected a dict")

    @property
    def hexdigest(self) -> str:
        """The digest without its ``sha256:`` prefix."""
        return self.digest.removeprefix("sha256:")

    def to_dict(self) -> dict[str, Any]:
        """The reference as a JSON-able dict (what goes into XCom and the model registry)."""
        return {
            "uri": self.uri,
            "digest": self.digest,
            "type": self.type,
            "size": self.size,
            # A copy, so that the caller cannot change this frozen reference through the dict.
            "metadata": copy.deepcopy(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactRef:
        """Build a reference from :meth:`to_dict` output; raise ArtifactError if ``data`` is malformed.

        Unknown keys are ignored, so that records written by a newer version still load.

        :param data: the dict, e.g. from a step's XCom record.
        """
        if not isinstance(data, Mapping):
            raise ArtifactError(f"invalid artifact reference {data!r}: expected a dict")
        missing = [key for key in ("uri", "digest", "type", "size") if key not in data]
        if missing:
            raise ArtifactError(f"invalid artifact reference {dict(data)!r}: missing {', '.join(missing)}")
        metadata = data.get("metadata")
        return cls(
            uri=data["uri"],
            digest=data["digest"],
            type=data["type"],
            size=data["size"],
            metadata=copy.deepcopy(metadata) if metadata is not None else {},
        )
