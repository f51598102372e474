"""The S3 store against a real S3-compatible server on 127.0.0.1 (``s3_server.py``), reached only
through Airflow connections: the connection's credentials, endpoint and region; multipart uploads
and streaming reads; denied and failing writes, which leave no object and no unfinished upload."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airflow_provider_mlpipe.artifacts.aws import download_prefix, s3_client
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.serializers import load_value, save_value
from airflow_provider_mlpipe.artifacts.store import DigestMismatchError, blob_key, store_from_url
from airflow_provider_mlpipe.exceptions import ArtifactError

from .conftest import connection_json, without_aws_environment
from .helpers import MIB, blob_keys, digest_of, overwrite_blob
from .s3_server import start_s3_server


# -- the connection --------------------------------------------------------------------------------
def test_credentials_endpoint_and_region_come_from_the_airflow_connection(
    s3_conn: str, s3_endpoint: str, s3_bucket: str
):
    store = S3ArtifactStore(s3_bucket, "p", aws_conn_id=s3_conn)
    blob = store.put_bytes(b"through the connection")
    client = store.s3()
    assert client.meta.endpoint_url == s3_endpoint
    assert client.meta.region_name == "us-east-1"
    assert client._request_signer._credentials.access_key == "testing"  # type: ignore[attr-defined]
    assert store.get_bytes(blob.digest) == b"through the connection"


def test_the_mlpipe_option_names_the_connection(
    s3_conn: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AIRFLOW__MLPIPE__AWS_CONN_ID", s3_conn)
    store = store_from_url(f"s3://{s3_bucket}/from/option")
    assert isinstance(store, S3ArtifactStore) and store.aws_conn_id is None
    assert store.get_bytes(store.put_bytes(b"x").digest) == b"x"


def test_aws_default_is_used_when_nothing_else_is_configured(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    without_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection_json(s3_endpoint, login="default-key"))
    client = s3_client()
    assert client.meta.endpoint_url == s3_endpoint
    assert client._request_signer._credentials.access_key == "default-key"  # type: ignore[attr-defined]


def test_a_pipeline_s_own_connection_reaches_its_store(s3_conn: str, s3_bucket: str):
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.settings import artifact_store_for

    pipeline = Pipeline("p", artifact_store=f"s3://{s3_bucket}/own", aws_conn_id=s3_conn)
    store = artifact_store_for(pipeline)
    assert isinstance(store, S3ArtifactStore) and store.aws_conn_id == s3_conn
    assert store.get_bytes(store.put_bytes(b"own").digest) == b"own"


def test_without_any_connection_boto3_s_default_chain_is_used_and_logged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    without_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    with caplog.at_level(logging.DEBUG, logger="airflow_provider_mlpipe.artifacts.aws"):
        client = s3_client()
    assert client._request_signer._credentials.access_key == "from-the-environment"  # type: ignore[attr-defined]
    assert client.meta.region_name == "eu-west-3"
    assert "No Airflow connection 'aws_default'" in caplog.text
    assert "default credential chain" in caplog.text


def test_a_connection_asked_for_by_name_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    without_aws_environment(monkeypatch, tmp_path)
    with pytest.raises(ArtifactError, match="no Airflow connection 'not_defined'"):
        S3ArtifactStore("bucket-x", aws_conn_id="not_defined").exists(digest_of(b"x"))
    monkeypatch.setenv("AIRFLOW__MLPIPE__AWS_CONN_ID", "also_not_defined")
    with pytest.raises(ArtifactError, match="no Airflow connection 'also_not_defined'"):
        store_from_url("s3://bucket-x").exists(digest_of(b"x"))


def test_s3_inputs_are_staged_through_the_same_connection(
    s3_conn: str, s3_admin: Any, s3_bucket: str, tmp_path: Path
):
    from airflow_provider_mlpipe.operators.base import stage_location

    s3_admin.put_object(Bucket=s3_bucket, Key="raw/2024/a.csv", Body=b"a,b\n1,2\n")
    s3_admin.put_object(Bucket=s3_bucket, Key="raw/2024/sub/b.csv", Body=b"c\n3\n")
    destination = tmp_path / "input"
    destination.mkdir()
    stage_location(f"s3://{s3_bucket}/raw/2024", destination, base_dir=None, aws_conn_id=s3_conn)
    assert (destination / "a.csv").read_bytes() == b"a,b\n1,2\n"
    assert (destination / "sub" / "b.csv").read_bytes() == b"c\n3\n"
    single = tmp_path / "single"
    single.mkdir()
    assert download_prefix(f"s3://{s3_bucket}/raw/2024/a.csv", single, aws_conn_id=s3_conn) == 1
    assert [path.name for path in single.iterdir()] == ["a.csv"]


# -- large blobs -----------------------------------------------------------------------------------
def unfinished_uploads(store: S3ArtifactStore) -> list:
    return store.s3().list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])


def test_a_large_file_is_uploaded_in_parts_and_read_back_streaming(
    s3_conn: str, s3_bucket: str, tmp_path: Path
):
    store = S3ArtifactStore(s3_bucket, "mp", aws_conn_id=s3_conn, multipart_threshold=MIB, part_size=5 * MIB)
    data = os.urandom(17 * MIB + 3)
    source = tmp_path / "large.bin"
    source.write_bytes(data)

    blob = store.put_file(source)
    assert blob.digest == digest_of(data)
    head = store.s3().head_object(Bucket=s3_bucket, Key=f"mp/{blob_key(blob.digest)}")
    assert head["ETag"].strip('"').endswith("-4")  # a multipart upload of 4 parts
    with store.open_blob(blob.digest) as reader:
        first = reader.read(MIB)
        reader.verify()
    assert first == data[:MIB]
    # Writing it again is a no-op, and no unfinished upload is left behind.
    assert store.put_file(source) == blob
    assert unfinished_uploads(store) == []
    assert blob_keys(store) == [blob_key(blob.digest)]


def test_a_streamed_value_is_spooled_then_uploaded_in_parts(s3_conn: str, s3_bucket: str):
    store = S3ArtifactStore(
        s3_bucket, "spool", aws_conn_id=s3_conn, multipart_threshold=MIB, part_size=5 * MIB
    )
    array = np.random.default_rng(1).random(2 * MIB)  # 16 MiB
    ref = save_value(store, array)
    np.testing.assert_array_equal(load_value(store, ref), array)
    assert unfinished_uploads(store) == []


def test_a_corrupted_s3_blob_fails_the_read_naming_the_artifact(s3_conn: str, s3_bucket: str):
    store = S3ArtifactStore(s3_bucket, "bad", aws_conn_id=s3_conn)
    ref = save_value(store, np.arange(1000.0), producer={"step": "Train", "output": "model"})
    overwrite_blob(store, ref.digest, b"\x93NUMPY garbage")
    with pytest.raises(DigestMismatchError, match=r"artifact s3://.*output 'model' of step 'Train'"):
        load_value(store, ref)


# -- denied and failing writes ---------------------------------------------------------------------
def _moto_api(endpoint: str, path: str, body: bytes) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}", data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (127.0.0.1 only)
        response.read()


ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _deny_put(bucket: str, prefix: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"}
        ],
    }


@pytest.fixture(scope="module")
def iam_server() -> Iterator[str]:
    """A server of its own that checks IAM permissions (set up first, then enforced)."""
    with start_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def iam_setup(iam_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """An admin and a writer user with keys, as Airflow connections; a bucket; IAM then enforced."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    without_aws_environment(monkeypatch, tmp_path)
    _moto_api(iam_server, "reset-auth", b"inf")  # set-up runs without authentication
    monkeypatch.setenv("AIRFLOW_CONN_MLPIPE_SETUP", connection_json(iam_server))
    iam = AwsBaseHook(aws_conn_id="mlpipe_setup", client_type="iam").get_client_type()
    suffix = uuid.uuid4().hex[:8]
    bucket = f"iam-{suffix}"
    s3_client("mlpipe_setup").create_bucket(Bucket=bucket)
    connections = {"bucket": bucket}
    for role, policy in (("admin", ALLOW_ALL), ("writer", ALLOW_ALL)):
        user = f"{role}-{suffix}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="base", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        conn_id = f"mlpipe_{role}"
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            connection_json(iam_server, login=key["AccessKeyId"], password=key["SecretAccessKey"]),
        )
        connections[role] = conn_id
        connections[f"{role}_user"] = user
    iam.put_user_policy(
        UserName=connections["writer_user"],
        PolicyName="no-writes-under-denied",
        PolicyDocument=json.dumps(_deny_put(bucket, "denied")),
    )
    _moto_api(iam_server, "reset-auth", b"0")  # from now on every request is authenticated
    yield connections
    _moto_api(iam_server, "reset-auth", b"inf")


def test_a_denied_write_names_the_store_and_the_artifact_and_writes_nothing(iam_setup: dict, tmp_path: Path):
    bucket = iam_setup["bucket"]
    allowed = S3ArtifactStore(bucket, "allowed", aws_conn_id=iam_setup["writer"])
    assert allowed.get_bytes(allowed.put_bytes(b"fine").digest) == b"fine"

    denied = S3ArtifactStore(
        bucket, "denied", aws_conn_id=iam_setup["writer"], multipart_threshold=MIB, part_size=5 * MIB
    )
    with pytest.raises(ArtifactError) as raised:
        denied.put_bytes(b"refused")
    message = str(raised.value)
    assert f"artifact store s3://{bucket}/denied" in message
    assert digest_of(b"refused") in message and "AccessDenied" in message

    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(11 * MIB))
    with pytest.raises(ArtifactError, match=f"s3://{bucket}/denied.*AccessDenied"):
        denied.put_file(large)
    with pytest.raises(ArtifactError, match="AccessDenied"):
        save_value(denied, np.ones(3 * MIB))

    admin = S3ArtifactStore(bucket, "", aws_conn_id=iam_setup["admin"])
    keys = [item["Key"] for item in admin.s3().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert [key for key in keys if key.startswith("denied/")] == []
    assert unfinished_uploads(admin) == []


def test_a_multipart_upload_that_fails_midway_is_aborted(iam_setup: dict, iam_server: str, tmp_path: Path):
    """The writer's permission is revoked between two parts: the upload fails, and is aborted."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    bucket = iam_setup["bucket"]
    store = S3ArtifactStore(
        bucket,
        "revoked",
        aws_conn_id=iam_setup["writer"],
        multipart_threshold=MIB,
        part_size=5 * MIB,
        max_concurrency=1,
    )
    iam = AwsBaseHook(aws_conn_id=iam_setup["admin"], client_type="iam").get_client_type()
    parts_started = []

    def revoke_after_the_first_part(params: dict, **_: Any) -> None:
        parts_started.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            iam.put_user_policy(
                UserName=iam_setup["writer_user"],
                PolicyName="revoked",
                PolicyDocument=json.dumps(_deny_put(bucket, "revoked")),
            )

    store.s3().meta.events.register("provide-client-params.s3.UploadPart", revoke_after_the_first_part)
    large = tmp_path / "large.bin"
    data = os.urandom(16 * MIB)
    large.write_bytes(data)
    with pytest.raises(ArtifactError) as raised:
        store.put_file(large)
    assert f"blob {digest_of(data)}" in str(raised.value) and "AccessDenied" in str(raised.value)
    assert parts_started[:2] == [1, 2]

    admin = S3ArtifactStore(bucket, "", aws_conn_id=iam_setup["admin"])
    assert unfinished_uploads(admin) == []
    assert admin.s3().list_objects_v2(Bucket=bucket, Prefix="revoked/").get("Contents", []) == []


def test_a_spec_names_its_connection(s3_conn: str, s3_bucket: str):
    from airflow_provider_mlpipe.settings import artifact_store_for
    from airflow_provider_mlpipe.spec import load_pipeline_text

    spec = f"""
name: with_conn
artifact_store: s3://{s3_bucket}/spec
aws_conn_id: {s3_conn}
steps: [{{name: Stop, type: fail, error_message: stop}}]
"""
    pipeline = load_pipeline_text(spec, file="with_conn.pipeline.yaml")
    assert pipeline.aws_conn_id == s3_conn
    store = artifact_store_for(pipeline)
    assert isinstance(store, S3ArtifactStore) and store.aws_conn_id == s3_conn
    assert store.get_bytes(store.put_bytes(b"spec").digest) == b"spec"
