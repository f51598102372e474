"""Clean up what interrupted writes left in an artifact store (``mlpipe store clean``).

A write that fails is cleaned up by the writer itself. A writer that is killed cannot clean up:

- in a local store it leaves its temp file under ``tmp/``. The next write removes such files
  anyway, once their writer is gone (see ``LocalArtifactStore.remove_stale_temp_files``);
- on S3 it leaves an unfinished multipart upload. Its parts are invisible, yet they are billed
  until the upload is aborted, and nothing in the store's own writes ever sees them. A bucket
  lifecycle rule (``AbortIncompleteMultipartUpload``) aborts them, where whoever runs the store may
  set one; :func:`abort_unfinished_uploads` does it on demand, for
  ``S3ArtifactStore.remove_unfinished_writes``.

Only unfinished writes are touched, never a blob: a blob is immutable once written, and others may
reference it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from airflow_provider_mlpipe.artifacts.store import UnfinishedWrite
from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore


def abort_unfinished_uploads(store: S3ArtifactStore, started_before: datetime) -> list[UnfinishedWrite]:
    """Abort the multipart uploads under the store's prefix that started before ``started_before``."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = store.s3()
    prefix = f"{store.prefix}/" if store.prefix else ""
    aborted: list[UnfinishedWrite] = []
    markers: dict[str, str] = {}  # where the next page starts (KeyMarker, UploadIdMarker)
    try:
        while True:
            page = client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix, **markers)  # type: ignore[arg-type]
            for upload in page.get("Uploads", []):
                started = upload["Initiated"]
                if started >= started_before:
                    continue
                try:
                    client.abort_multipart_upload(
                        Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise
                    continue  # finished or aborted meanwhile
                aborted.append(UnfinishedWrite(f"s3://{store.bucket}/{upload['Key']}", started))
            if not page.get("IsTruncated"):
                return aborted
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
    except (BotoCoreError, ClientError) as error:
        raise ArtifactError(
            f"cannot list or abort the unfinished uploads of the artifact store {store.url}: {error}"
        ) from error
