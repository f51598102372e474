"""Content digests of S3 inputs, on the S3 test server: an object's sha256, a prefix's manifest, each
object hashed once per version (remembered by ETag in the artifact store, shared by every worker)."""

from __future__ import annotations

import hashlib
import json

from airflow_provider_mlpipe.artifacts.s3 import S3ArtifactStore
from airflow_provider_mlpipe.fingerprint.inputs import s3_digest


def test_s3_inputs_are_hashed_once_per_version(s3_conn: str, s3_bucket: str, s3_admin):
    store = S3ArtifactStore(s3_bucket, "store", aws_conn_id=s3_conn)
    s3_admin.put_object(Bucket=s3_bucket, Key="raw/2024/a.csv", Body=b"a,b\n1,2\n")
    s3_admin.put_object(Bucket=s3_bucket, Key="raw/2024/b.csv", Body=b"a,b\n3,4\n")

    single = s3_digest(f"s3://{s3_bucket}/raw/2024/a.csv", store=store, aws_conn_id=s3_conn)
    assert single.digest == "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest() and single.type == "file"
    prefix = s3_digest(f"s3://{s3_bucket}/raw/2024", store=store, aws_conn_id=s3_conn)
    assert prefix.type == "directory" and prefix.size == 16

    # Remembered in the store by ETag: a planted memo answers for this version of the object.
    memos = store.list_documents("digests/s3/")
    assert len(memos) == 2
    for key in memos:
        memo = json.loads(store.read_document(key))
        store.write_document(key, json.dumps({**memo, "digest": "sha256:" + "0" * 64}).encode())
    again = s3_digest(f"s3://{s3_bucket}/raw/2024/a.csv", store=store, aws_conn_id=s3_conn)
    assert again.digest == "sha256:" + "0" * 64

    # A new version of the object has a new ETag: it is hashed again.
    s3_admin.put_object(Bucket=s3_bucket, Key="raw/2024/a.csv", Body=b"a,b\n9,9\n")
    changed = s3_digest(f"s3://{s3_bucket}/raw/2024/a.csv", store=store, aws_conn_id=s3_conn)
    assert changed.digest == "sha256:" + hashlib.sha256(b"a,b\n9,9\n").hexdigest()
