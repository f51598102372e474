"""``mlpipe store clean``: what killed writers left is removed, never a blob or a live write.

Run as a real ``mlpipe`` subprocess, against the S3-compatible test server (through an Airflow
connection) and against a local folder with a writer killed by SIGKILL; the race with another
cleaner runs in process, its competing abort a real request sent through boto3's event hook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.artifacts.store import blob_key

from .helpers import MIB, digest_of
from .test_local_faults import start_half_writer, temp_files

MLPIPE = [sys.executable, "-m", "airflow_provider_mlpipe.cli.main"]


def mlpipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MLPIPE, *args], env=env or dict(os.environ), capture_output=True, text=True, timeout=300
    )


def abandoned_upload(client: object, bucket: str, key: str) -> str:
    """What a writer killed during a multipart upload leaves: an upload with a part, never completed."""
    upload_id: str = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]  # type: ignore[attr-defined]
    client.upload_part(  # type: ignore[attr-defined]
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=os.urandom(5 * MIB)
    )
    return upload_id


def uploads(client: object, bucket: str) -> dict[str, str]:
    """Upload id -> key of the bucket's unfinished uploads."""
    found = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])  # type: ignore[attr-defined]
    return {upload["UploadId"]: upload["Key"] for upload in found}


@pytest.fixture
def s3_env(s3_conn: str) -> dict[str, str]:
    """The environment of an ``mlpipe`` that reaches the test server through the connection ``s3_conn``."""
    return {**os.environ, "AIRFLOW__MLPIPE__AWS_CONN_ID": s3_conn}


def test_clean_aborts_the_store_s_abandoned_uploads_and_nothing_else(
    s3_conn: str, s3_bucket: str, s3_admin: object, s3_env: dict[str, str]
):
    store = S3ArtifactStore(s3_bucket, "team/artifacts", aws_conn_id=s3_conn)
    kept_blob = store.put_bytes(b"a finished blob")
    ours = {
        abandoned_upload(s3_admin, s3_bucket, f"team/artifacts/{blob_key(digest_of(name))}")
        for name in (b"one", b"two")
    }
    # Another store in the same bucket (a prefix that starts like ours): not this store's business.
    other = abandoned_upload(s3_admin, s3_bucket, f"team/artifacts-old/{blob_key(digest_of(b'x'))}")

    done = mlpipe("store", "clean", "--older-than", "0s", "--store", store.url, env=s3_env)

    assert done.returncode == 0, done.stderr
    assert f"Removed 2 unfinished writes from {store.url}" in done.stdout
    assert done.stdout.count(f"removed s3://{s3_bucket}/team/artifacts/objects/sha256/") == 2
    assert set(uploads(s3_admin, s3_bucket)) == {other}
    assert not ours & set(uploads(s3_admin, s3_bucket))
    assert store.get_bytes(kept_blob.digest) == b"a finished blob"


def test_clean_leaves_uploads_started_after_the_cut_off(
    s3_conn: str, s3_bucket: str, s3_admin: object, s3_env: dict[str, str]
):
    store = S3ArtifactStore(s3_bucket, "fresh", aws_conn_id=s3_conn)
    upload = abandoned_upload(s3_admin, s3_bucket, f"fresh/{blob_key(digest_of(b'young'))}")
    # The test server (moto) says every upload started on 2010-11-10, whenever it did: a cut-off
    # before that day leaves it, as a real server's recent upload is left by the default of 1d.
    started = s3_admin.list_multipart_uploads(Bucket=s3_bucket)["Uploads"][0]["Initiated"]  # type: ignore[attr-defined]
    assert started.year == 2010

    before = mlpipe("store", "clean", "--older-than", "2010-11-01", "--store", store.url, env=s3_env)
    assert before.returncode == 0, before.stderr
    assert "Removed 0 unfinished writes" in before.stdout
    assert set(uploads(s3_admin, s3_bucket)) == {upload}

    after = mlpipe("store", "clean", "--older-than", "2010-12-01", "--store", store.url, env=s3_env)
    assert after.returncode == 0, after.stderr
    assert "Removed 1 unfinished write from" in after.stdout
    assert uploads(s3_admin, s3_bucket) == {}


def test_an_upload_finished_or_aborted_meanwhile_is_passed_over(
    s3_conn: str, s3_bucket: str, s3_admin: object
):
    """Between the listing and the abort, another cleaner (or the writer itself) ends one upload: the
    abort of that one answers NoSuchUpload, which is not an error and not counted as removed."""
    store = S3ArtifactStore(s3_bucket, "raced", aws_conn_id=s3_conn)
    raced = abandoned_upload(s3_admin, s3_bucket, f"raced/{blob_key(digest_of(b'raced'))}")
    other = abandoned_upload(s3_admin, s3_bucket, f"raced/{blob_key(digest_of(b'other'))}")
    ended_first: list[str] = []

    def another_cleaner_first(params: dict, **_: object) -> None:
        # Through boto3's own event hook, a real request of another client, just before ours.
        if params["UploadId"] == raced and not ended_first:
            s3_admin.abort_multipart_upload(Bucket=s3_bucket, Key=params["Key"], UploadId=raced)  # type: ignore[attr-defined]
            ended_first.append(raced)

    store.s3().meta.events.register("before-parameter-build.s3.AbortMultipartUpload", another_cleaner_first)
    assert set(uploads(s3_admin, s3_bucket)) == {raced, other}

    removed = store.remove_unfinished_writes(datetime(2010, 12, 1, tzinfo=timezone.utc))

    assert ended_first == [raced]
    assert [write.where for write in removed] == [f"s3://{s3_bucket}/raced/{blob_key(digest_of(b'other'))}"]
    assert uploads(s3_admin, s3_bucket) == {}


def test_clean_removes_a_killed_writer_s_temp_file_and_leaves_a_live_writer_s(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    data_file = tmp_path / "data.bin"
    data = os.urandom(4 * MIB)
    data_file.write_bytes(data)
    # The live writer first: a writer starting sweeps the temp files of dead ones (not of live ones).
    alive = start_half_writer(store, data_file, tmp_path / "go")
    live = temp_files(store)
    killed = start_half_writer(store, data_file, tmp_path / "never")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    dead = sorted(set(temp_files(store)) - set(live))
    assert len(live) == 1 and len(dead) == 1

    done = mlpipe("store", "clean", "--store", str(store.root))

    assert done.returncode == 0, done.stderr
    assert f"removed {store.root / 'tmp' / dead[0]}" in done.stdout
    assert "Removed 1 unfinished write from" in done.stdout
    assert temp_files(store) == live
    (tmp_path / "go").touch()
    stdout, stderr = alive.communicate(timeout=60)
    assert alive.returncode == 0, stderr
    assert store.get_bytes(stdout.strip()) == data


def test_a_bad_older_than_is_refused_naming_the_option(tmp_path: Path):
    done = mlpipe("store", "clean", "--older-than", "yesterday", "--store", str(tmp_path / "store"))

    assert done.returncode == 2
    assert "--older-than" in done.stderr and "'yesterday'" in done.stderr
