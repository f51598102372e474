"""S3 clients from an Airflow AWS connection: credentials, endpoint and region come from Airflow.

Used by the S3 artifact store and to stage ``s3://`` inputs (:func:`download_prefix`).

The connection id is, in order: the one given (a pipeline's ``aws_conn_id``), ``[mlpipe]
aws_conn_id``, else ``aws_default``. It is read through Airflow's public ``BaseHook.get_connection``
(the Task SDK), so it comes from wherever Airflow keeps connections for that process: the API server
for a task, the metadata DB or a secrets backend for the api-server, ``AIRFLOW_CONN_*`` variables and
secrets backends everywhere. The client itself is made by the Amazon provider's ``AwsBaseHook``, so
everything an ``aws`` connection may hold works as it does for Airflow's own S3 operators: keys,
session tokens, ``role_arn``, profiles, ``endpoint_url``, ``region_name``, ``config_kwargs``.

Without a connection (``aws_default`` undefined and no other id configured) the client uses boto3's
default credential chain (environment, ``~/.aws``, instance roles), and says so in a debug log. A
connection id that was asked for by name but does not exist is an error.

Nothing here is imported before a client is needed: the Amazon provider and boto3 are heavy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import ArtifactError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

DEFAULT_AWS_CONN_ID = "aws_default"
# Retries for throttling and transient errors; the connection's own config_kwargs take precedence.
RETRIES = {"mode": "standard", "max_attempts": 5}


def configured_aws_conn_id(aws_conn_id: str | None = None) -> tuple[str, bool]:
    """The connection id to use and whether it was asked for by name (else it is the default).

    :param aws_conn_id: a pipeline's own connection id, if it has one.
    """
    if aws_conn_id:
        return aws_conn_id, True
    from airflow_provider_mlpipe.settings import mlpipe_option

    configured = mlpipe_option("aws_conn_id")
    if configured:
        return configured, True
    return DEFAULT_AWS_CONN_ID, False


def find_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None if Airflow has none by that id.

    :param conn_id: the connection id.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def s3_client(aws_conn_id: str | None = None) -> S3Client:
    """A new boto3 S3 client configured from the Airflow connection (see the module doc).

    :param aws_conn_id: the connection id; None: ``[mlpipe] aws_conn_id``, else ``aws_default``.
    :raises ArtifactError: a connection asked for by name does not exist.
    """
    conn_id, named = configured_aws_conn_id(aws_conn_id)
    from botocore.config import Config

    retries = Config(retries=RETRIES)  # type: ignore[arg-type]
    if find_connection(conn_id) is None:
        if named:
            raise ArtifactError(
                f"no Airflow connection {conn_id!r} for S3: define it (airflow connections add, "
                f"AIRFLOW_CONN_{conn_id.upper()}, or a secrets backend) or unset aws_conn_id"
            )
        log.debug(
            "No Airflow connection %r: S3 uses boto3's default credential chain "
            "(AWS_* environment variables, ~/.aws, instance or task roles)",
            conn_id,
        )
        import boto3

        # A session per client: boto3's default session is not thread safe.
        return boto3.session.Session().client("s3", config=retries)
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    # Our retries, unless the connection's config_kwargs say otherwise (merge: the argument wins).
    return hook.get_client_type(config=retries.merge(hook.config))


def download_prefix(url: str, destination: Path, *, aws_conn_id: str | None = None) -> int:
    """Download the object ``url``, or every object under it, into the folder ``destination``.

    Each file is streamed to disk. Keys are placed relative to the URL's prefix; a key that would
    leave ``destination`` (``..``) is skipped.

    :param url: ``s3://bucket/key-or-prefix``.
    :param destination: an existing folder.
    :param aws_conn_id: the Airflow connection, as for the store.
    :returns: the number of files written.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = s3_client(aws_conn_id)
    count = 0
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix) :].lstrip("/") or Path(key).name
                if not relative or ".." in Path(relative).parts or key.endswith("/"):
                    continue
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                try:
                    with open(target, "wb") as output:
                        for chunk in body.iter_chunks(8 * 1024 * 1024):
                            output.write(chunk)
                finally:
                    body.close()
                count += 1
    except (ClientError, BotoCoreError) as error:
        raise ArtifactError(f"cannot read input {url}: {error}") from error
    return count
