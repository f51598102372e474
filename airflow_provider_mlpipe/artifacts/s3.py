"""The artifact store under ``s3://bucket/prefix``, through an Airflow AWS connection (see :mod:`.aws`).

Writes never replace anything: a blob is PUT with ``If-None-Match: *`` (or its multipart upload
completed with it), so S3 itself refuses to overwrite an existing object, even with concurrent
writers. A small blob is one PUT carrying its SHA-256, which S3 checks; a large one is uploaded in
parts, a few at a time, read from the file (never all in memory), and a failed upload is aborted so
that no part is left behind. A blob written as a stream (a serializer's output) is spooled to an
anonymous local temp file while it is hashed, since its key, the digest, is only known at the end.

Reads stream: the bytes are hashed as they arrive and checked at the end.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mlpipe.artifacts.reference import check_digest
from airflow_provider_mlpipe.artifacts.store import (
    KEY_SEGMENT,
    ArtifactNotFoundError,
    ArtifactStore,
    BlobReader,
    BlobWriter,
    StoredBlob,
    UnfinishedWrite,
    blob_key,
    check_document_key,
    check_document_prefix,
    sha256_file,
)
from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_FAILED = {"PreconditionFailed", "412"}
# S3 answers 409 to a conditional write racing another one on the same key.
_CONFLICT = "ConditionalRequestConflict"


def _error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _sha256_base64(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest.removeprefix("sha256:"))).decode("ascii")


class S3ArtifactStore(ArtifactStore):
    """A store under ``s3://bucket/prefix``.

    :param bucket: the bucket (it must exist).
    :param prefix: the key prefix of the store's root, without leading or trailing ``/``.
    :param aws_conn_id: the Airflow connection (credentials, endpoint, region); None:
        ``[mlpipe] aws_conn_id``, else ``aws_default``, else boto3's default chain.
    :param client: a boto3 S3 client to use instead (not pickled with the store).
    :param multipart_threshold: blobs larger than this are uploaded in parts.
    :param part_size: the size of an uploaded part (S3's minimum is 5 MiB).
    :param max_concurrency: parts uploaded at once (each holds one part in memory).
    """

    MIN_PART_SIZE = 5 * 1024 * 1024
    MAX_PARTS = 10_000
    CONFLICT_RETRIES = 5

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        aws_conn_id: str | None = None,
        client: S3Client | None = None,
        multipart_threshold: int = 64 * 1024 * 1024,
        part_size: int = 16 * 1024 * 1024,
        max_concurrency: int = 4,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ArtifactError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix and not all(KEY_SEGMENT.fullmatch(segment) for segment in prefix.split("/")):
            raise ArtifactError(f"invalid S3 prefix {prefix!r}: no '..', '.' or empty segments")
        if part_size < self.MIN_PART_SIZE:
            raise ArtifactError(f"part_size {part_size} is below S3's minimum of {self.MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.prefix = prefix
        self.aws_conn_id = aws_conn_id
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_concurrency = max(1, max_concurrency)
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled, nor can a live client: a copy in another process makes its own.
        state = self.__dict__.copy()
        del state["_lock"]
        if self._owns_client:
            state["_client"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def s3(self) -> S3Client:
        """The S3 client, created on first use from the Airflow connection."""
        client = self._client
        if client is None:
            # Created on first use, so that importing the provider and building DAGs stay cheap;
            # the lock keeps concurrent threads from creating several clients.
            with self._lock:
                if self._client is None:
                    from airflow_provider_mlpipe.artifacts.aws import s3_client

                    self._client = s3_client(self.aws_conn_id)
                client = self._client
        return client

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _write_error(self, what: str, key: str, error: BaseException) -> ArtifactError:
        return ArtifactError(
            f"cannot write {what} to the artifact store {self.url} ({self._where(key)}): {error}"
        )

    # -- blobs: writing --------------------------------------------------------------------------
    def blob_writer(self) -> BlobWriter:
        return _SpooledS3BlobWriter(self)

    def put_file(self, path: Path) -> StoredBlob:
        # The key is the digest: hash the file first, then upload it from the file itself.
        try:
            digest, size = sha256_file(path)
        except OSError as error:
            raise ArtifactError(f"cannot store file {path} in {self.url}: {error}") from error
        if not self.exists(digest):
            try:
                with open(path, "rb") as source:
                    self.upload_blob(source, digest, size)
            except OSError as error:
                raise ArtifactError(f"cannot store file {path} in {self.url}: {error}") from error
        return StoredBlob(digest, size, self.uri(digest))

    def upload_blob(self, source: IO[bytes], digest: str, size: int) -> None:
        """Upload the ``size`` bytes of the open file ``source`` as the blob ``digest``.

        :raises ArtifactError: the upload failed; nothing of it is left in the bucket.
        """
        key = self._key(blob_key(digest))
        if size <= self.multipart_threshold:
            # S3 checks the body against our own sha256: a corrupted transfer is refused.
            self._put_object(
                key, source, create_only=True, what=f"blob {digest}", checksum=_sha256_base64(digest)
            )
        else:
            self._put_multipart(key, source, size, digest)

    def _put_object(
        self,
        key: str,
        body: Any,
        *,
        what: str,
        create_only: bool = False,
        if_match: str | None = None,
        checksum: str | None = None,
    ) -> bool:
        """PUT ``key``; False if a condition (create-only, if-match) did not hold."""
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, Any] = {}
        if create_only:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if checksum is not None:
            extra["ChecksumSHA256"] = checksum
        start = body.tell() if hasattr(body, "tell") else None
        for attempt in range(self.CONFLICT_RETRIES):
            try:
                if start is not None:
                    body.seek(start)
                self.s3().put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
                return True
            except ClientError as error:
                code = _error_code(error)
                if (create_only or if_match is not None) and code in _PRECONDITION_FAILED:
                    return False
                if if_match is not None and code in _NOT_FOUND:
                    return False  # the document it was to replace is gone
                # Retry a 409: the retry sees the winner's object (412) or writes its own.
                if code == _CONFLICT and attempt + 1 < self.CONFLICT_RETRIES:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise self._write_error(what, key, error) from error
            except (BotoCoreError, OSError) as error:
                raise self._write_error(what, key, error) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _put_multipart(self, key: str, source: IO[bytes], size: int, digest: str) -> None:
        """Upload a large blob in parts; completed with If-None-Match, so it never replaces one."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.s3()
        part_size = max(self.part_size, -(-size // self.MAX_PARTS))
        offsets = list(range(0, size, part_size))
        fd = source.fileno()
        upload_id = None

        def upload(number: int) -> CompletedPartTypeDef:
            offset = offsets[number - 1]
            # One part in memory per worker thread: never the whole blob.
            chunk = os.pread(fd, min(part_size, size - offset), offset)
            response = client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=str(upload_id), PartNumber=number, Body=chunk
            )
            return {"PartNumber": number, "ETag": response["ETag"]}

        try:
            upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="mlpipe-s3-part") as pool:
                parts = list(pool.map(upload, range(1, len(offsets) + 1)))
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
            upload_id = None
        except ClientError as error:
            # 412: a concurrent writer stored the same content first. 409: one is doing so now.
            if _error_code(error) in {*_PRECONDITION_FAILED, _CONFLICT}:
                for attempt in range(self.CONFLICT_RETRIES):
                    if self.exists(digest):
                        return
                    time.sleep(0.05 * 2**attempt)
            raise self._write_error(f"blob {digest}", key, error) from error
        except (BotoCoreError, OSError) as error:
            raise self._write_error(f"blob {digest}", key, error) from error
        finally:
            if upload_id is not None:
                # Parts of an unfinished upload cost storage until aborted, and are invisible.
                with contextlib.suppress(Exception):
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def remove_unfinished_writes(self, started_before: datetime) -> list[UnfinishedWrite]:
        """Abort the multipart uploads under this store's prefix that started before ``started_before``."""
        from airflow_provider_mlpipe.artifacts.maintenance import abort_unfinished_uploads

        return abort_unfinished_uploads(self, started_before)

    # -- blobs: reading --------------------------------------------------------------------------
    def uri(self, digest: str) -> str:
        return self._where(self._key(blob_key(digest)))

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(blob_key(digest))
        try:
            self.s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                return False
            raise ArtifactError(
                f"cannot check {self._where(key)} in the artifact store {self.url}: {error}"
            ) from error
        except BotoCoreError as error:
            raise ArtifactError(
                f"cannot check {self._where(key)} in the artifact store {self.url}: {error}"
            ) from error
        return True

    def _get_object(self, key: str, *, what: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.s3().get_object(Bucket=self.bucket, Key=key))
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise ArtifactNotFoundError(f"no {what} in the artifact store {self.url}") from None
            raise ArtifactError(f"cannot read {what} ({self._where(key)}): {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"cannot read {what} ({self._where(key)}): {error}") from error

    def open_blob(self, digest: str) -> BlobReader:
        key = self._key(blob_key(digest))
        body = self._get_object(key, what=f"blob {digest}")["Body"]
        return BlobReader(_ReadErrors(body, self._where(key)), digest, self._where(key))

    @contextlib.contextmanager
    def blob_path(self, digest: str) -> Iterator[Path]:
        check_digest(digest)
        with tempfile.TemporaryDirectory(prefix="mlpipe-s3-") as folder:
            yield self.get_file(digest, Path(folder) / digest.removeprefix("sha256:"))

    # -- documents -------------------------------------------------------------------------------
    def write_document(
        self, key: str, data: bytes, *, create_only: bool = False, if_match: str | None = None
    ) -> bool:
        if create_only and if_match is not None:
            raise ArtifactError(f"document {key!r}: create_only and if_match exclude each other")
        full_key = self._key(check_document_key(key))
        return self._put_object(
            full_key, data, what=f"document {key!r}", create_only=create_only, if_match=if_match
        )

    def read_document_tagged(self, key: str) -> tuple[bytes, str]:
        from botocore.exceptions import BotoCoreError

        full_key = self._key(check_document_key(key))
        response = self._get_object(full_key, what=f"document {key!r}")
        body = response["Body"]
        try:
            return body.read(), str(response["ETag"])
        except BotoCoreError as error:
            raise ArtifactError(f"cannot read {self._where(full_key)}: {error}") from error
        finally:
            body.close()

    def delete_document(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        full_key = self._key(check_document_key(key))
        try:
            self.s3().head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                return False
            raise ArtifactError(f"cannot delete {self._where(full_key)}: {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"cannot delete {self._where(full_key)}: {error}") from error
        try:
            self.s3().delete_object(Bucket=self.bucket, Key=full_key)
        except (ClientError, BotoCoreError) as error:
            raise ArtifactError(f"cannot delete {self._where(full_key)}: {error}") from error
        return True

    def list_documents(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        check_document_prefix(prefix)
        root = self._key("")
        keys = []
        try:
            paginator = self.s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(root) :]
                    # Skip blobs, and anything written by other tools that is not a valid key.
                    with contextlib.suppress(ArtifactError):
                        keys.append(check_document_key(key))
        except (ClientError, BotoCoreError) as error:
            raise ArtifactError(f"cannot list {self._where(root + prefix)}: {error}") from error
        return sorted(keys)


class _ReadErrors:
    """A response body whose network errors are ArtifactErrors naming the object."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def read(self, amount: int | None = None) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            return bytes(self._body.read(amount))
        except (BotoCoreError, OSError) as error:
            raise ArtifactError(f"cannot read {self._where}: {error}") from error

    def close(self) -> None:
        self._body.close()


class _SpooledS3BlobWriter(BlobWriter):
    """Spools to an anonymous temp file (nothing is left if the process dies), uploads on commit."""

    def __init__(self, store: S3ArtifactStore) -> None:
        super().__init__(store)
        self._s3_store = store
        try:
            # TemporaryFile has no name on Linux (O_TMPFILE): a killed writer leaves nothing.
            self._spool: IO[bytes] = tempfile.TemporaryFile(prefix="mlpipe-spool-")  # noqa: SIM115
        except OSError as error:
            raise ArtifactError(f"cannot spool a blob for the artifact store {store.url}: {error}") from error

    def _write_raw(self, data: memoryview) -> None:
        self._spool.write(data)

    def _commit(self, digest: str) -> None:
        try:
            self._spool.flush()
            if not self._s3_store.exists(digest):
                self._spool.seek(0)
                self._s3_store.upload_blob(self._spool, digest, self.size)
        except OSError as error:
            raise ArtifactError(
                f"cannot write blob {digest} to the artifact store {self.store.url}: {error}"
            ) from error
        finally:
            self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._spool.close()
