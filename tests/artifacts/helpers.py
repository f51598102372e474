"""Helpers of the artifact tests: look at or damage a store behind its back, reach it from a subprocess."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.store import ArtifactStore, blob_key

MIB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def admin_client(store: S3ArtifactStore) -> Any:
    """A client of its own for the store's bucket, from the store's Airflow connection."""
    from airflow_provider_mlpipe.artifacts.aws import s3_client

    return s3_client(store.aws_conn_id)


def blob_keys(store: ArtifactStore) -> list[str]:
    """The blob keys actually present in the store (relative to its root), read behind its back."""
    if isinstance(store, LocalArtifactStore):
        objects = store.root / "objects"
        return sorted(p.relative_to(store.root).as_posix() for p in objects.rglob("*") if p.is_file())
    assert isinstance(store, S3ArtifactStore)
    root = f"{store.prefix}/" if store.prefix else ""
    response = admin_client(store).list_objects_v2(Bucket=store.bucket, Prefix=root + "objects/")
    return sorted(item["Key"][len(root) :] for item in response.get("Contents", []))


def overwrite_blob(store: ArtifactStore, digest: str, data: bytes) -> None:
    """Corrupt a blob behind the store's back (a disk error, a tool writing where it should not)."""
    if isinstance(store, LocalArtifactStore):
        path = store.root / blob_key(digest)
        path.chmod(0o644)
        path.write_bytes(data)
        return
    assert isinstance(store, S3ArtifactStore)
    admin_client(store).put_object(Bucket=store.bucket, Key=f"{store.prefix}/{blob_key(digest)}", Body=data)


def store_url_and_env(store: ArtifactStore) -> tuple[str, dict[str, str]]:
    """How a separate process reaches the same store (S3: through the same Airflow connection)."""
    env = dict(os.environ)
    if isinstance(store, S3ArtifactStore):
        assert store.aws_conn_id is not None
        env["AIRFLOW__MLPIPE__AWS_CONN_ID"] = store.aws_conn_id
    return store.url, env
