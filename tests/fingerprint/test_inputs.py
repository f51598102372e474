"""Content digests of literal inputs: what ``sha256sum`` says of a file, a manifest for a folder,
remembered by the file's identity so that a large file is hashed once, and never stale."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from airflow_provider_mlpipe.fingerprint.inputs import LocalDigests


def test_a_file_digest_is_its_sha256_and_is_remembered(tmp_path: Path):
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n")
    digests = LocalDigests(tmp_path / "memo")

    content = digests.digest(data)

    assert content.digest == "sha256:" + hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (content.type, content.size) == ("file", 8)
    [memo] = list((tmp_path / "memo").rglob("*.json"))
    assert json.loads(memo.read_text())["digest"] == content.digest


def test_the_memo_answers_for_the_same_version_of_a_file_without_reading_it(tmp_path: Path):
    data = tmp_path / "big.bin"
    data.write_bytes(b"x" * 1000)
    digests = LocalDigests(tmp_path / "memo")
    digests.digest(data)
    # Proof that the bytes are not read again: a memo for this very version of the file answers.
    [memo] = list((tmp_path / "memo").rglob("*.json"))
    remembered = json.loads(memo.read_text())
    memo.write_text(json.dumps({**remembered, "digest": "sha256:" + "0" * 64}))
    assert digests.digest(data).digest == "sha256:" + "0" * 64


def test_a_changed_file_is_hashed_again(tmp_path: Path):
    data = tmp_path / "data.csv"
    data.write_bytes(b"one")
    digests = LocalDigests(tmp_path / "memo")
    first = digests.digest(data).digest
    data.write_bytes(b"two")  # same size: only the identity (mtime/ctime) tells
    assert digests.digest(data).digest == "sha256:" + hashlib.sha256(b"two").hexdigest() != first


def test_a_folder_digest_covers_every_file_and_name(tmp_path: Path):
    folder = tmp_path / "data"
    (folder / "part").mkdir(parents=True)
    (folder / "a.csv").write_text("1\n")
    (folder / "part" / "b.csv").write_text("2\n")
    digests = LocalDigests(tmp_path / "memo")
    first = digests.digest(folder)
    assert first.type == "directory" and first.size == 4

    (folder / "part" / "b.csv").rename(folder / "part" / "c.csv")
    assert digests.digest(folder).digest != first.digest
