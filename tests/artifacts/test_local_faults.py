"""Faults of the local store with real processes and a real file system: a writer killed with
SIGKILL in the middle of a blob, a full disk (a small tmpfs), a blob corrupted on disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.serializers import load_value, materialize, save_value
from airflow_provider_mlpipe.artifacts.store import DigestMismatchError, blob_key
from airflow_provider_mlpipe.exceptions import ArtifactError

from .helpers import MIB, blob_keys, digest_of

PRODUCER = {"pipeline": "abalone", "step": "Preprocess", "output": "train", "run_id": "manual__1"}

# A writer that stops in the middle of a blob and waits: "WRITING" once half of it is written, then
# it commits only when the file named by its third argument appears.
HALF_WRITER = textwrap.dedent(
    """
    import os, pathlib, sys, time
    from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore

    store = LocalArtifactStore(sys.argv[1])
    data = pathlib.Path(sys.argv[2]).read_bytes()
    go = pathlib.Path(sys.argv[3])
    with store.blob_writer() as writer:
        writer.write(data[: len(data) // 2])
        print("WRITING", flush=True)
        deadline = time.monotonic() + 120
        while not go.exists():
            if time.monotonic() > deadline:
                sys.exit("no signal to go on")
            time.sleep(0.01)
        writer.write(data[len(data) // 2 :])
        print(writer.commit().digest, flush=True)
    """
)


def start_half_writer(store: LocalArtifactStore, data_file: Path, go: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITER, str(store.root), str(data_file), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "WRITING", process.stderr.read() if process.stderr else line
    return process


def temp_files(store: LocalArtifactStore) -> list[str]:
    folder = store.root / "tmp"
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_a_writer_killed_mid_blob_leaves_nothing_visible_and_its_temp_file_goes_at_the_next_write(
    tmp_path: Path,
):
    store = LocalArtifactStore(tmp_path / "store")
    data = os.urandom(8 * MIB)
    data_file = tmp_path / "data.bin"
    data_file.write_bytes(data)

    killed = start_half_writer(store, data_file, tmp_path / "never")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL

    # Half a blob was on disk, in a temp file: no blob is visible, under any digest.
    assert blob_keys(store) == []
    assert not store.exists(digest_of(data))
    dead_temp = temp_files(store)
    assert len(dead_temp) == 1

    # A live writer, in the middle of its own blob, while the next write happens.
    alive = start_half_writer(store, data_file, tmp_path / "go")
    live_temp = set(temp_files(store)) - set(dead_temp)
    assert len(live_temp) == 1

    store.put_bytes(b"the next write")

    # The dead writer's temp file is gone; the live writer's is still there, and it finishes.
    remaining = temp_files(store)
    assert len(remaining) == 1 and remaining[0] in live_temp
    (tmp_path / "go").touch()
    stdout, stderr = alive.communicate(timeout=60)
    assert alive.returncode == 0, stderr
    assert stdout.strip() == digest_of(data)
    assert store.get_bytes(digest_of(data)) == data
    assert temp_files(store) == []
    assert sorted(blob_keys(store)) == sorted(
        [blob_key(digest_of(data)), blob_key(digest_of(b"the next write"))]
    )


def test_a_writer_in_this_process_keeps_its_temp_file_while_others_write(tmp_path: Path):
    """The sweep tests a lock per open file: even a writer of the same process is safe."""
    store = LocalArtifactStore(tmp_path / "store")
    with store.blob_writer() as slow:
        slow.write(b"first half, ")
        for index in range(5):
            store.put_bytes(f"other {index}".encode())
        assert len(temp_files(store)) == 1
        slow.write(b"second half")
        blob = slow.commit()
    assert store.get_bytes(blob.digest) == b"first half, second half"
    assert temp_files(store) == []


FULL_DISK = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from airflow_provider_mlpipe.artifacts.local import LocalArtifactStore
    from airflow_provider_mlpipe.artifacts.serializers import save_value
    from airflow_provider_mlpipe.exceptions import ArtifactError

    root = sys.argv[1]
    store = LocalArtifactStore(os.path.join(root, "store"))
    result = {}
    try:
        save_value(store, np.ones(2 * 1024 * 1024))  # 16 MiB on a 4 MiB file system
    except ArtifactError as error:
        result["error"] = str(error)
    result["tmp_after_failure"] = sorted(os.listdir(os.path.join(root, "store", "tmp")))
    objects = os.path.join(root, "store", "objects")
    result["blobs_after_failure"] = [f for _, _, files in os.walk(objects) for f in files]
    small = save_value(store, {"fits": True})
    result["small"] = small.digest
    result["tmp_after_next"] = sorted(os.listdir(os.path.join(root, "store", "tmp")))
    print(json.dumps(result))
    """
)


def test_a_full_disk_fails_the_write_and_leaves_no_partial_blob(tmp_path: Path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace = ["unshare", "--user", "--map-root-user", "--mount"]
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: no private small file system to fill")
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    command = [
        *namespace,
        "sh",
        "-c",
        f'mount -t tmpfs -o size=4m tmpfs "{mount_point}" && exec "{sys.executable}" "{script}" "{mount_point}"',
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 and "mount" in result.stderr and "Traceback" not in result.stderr:
        pytest.skip(f"no private tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert "No space left on device" in outcome["error"]
    assert str(mount_point / "store") in outcome["error"]  # the message names the store
    assert outcome["blobs_after_failure"] == []
    assert outcome["tmp_after_failure"] == []
    assert outcome["small"].startswith("sha256:")
    assert outcome["tmp_after_next"] == []


# -- corrupted blobs name the artifact and its producer ----------------------------------------------
def corrupt(store: LocalArtifactStore, digest: str) -> None:
    """Flip one byte in the middle of a blob on disk, as a failing disk would."""
    path = store.root / blob_key(digest)
    path.chmod(0o644)
    with open(path, "r+b") as stream:
        stream.seek(path.stat().st_size // 2)
        byte = stream.read(1)
        stream.seek(-1, os.SEEK_CUR)
        stream.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize(
    "value",
    [
        {"json": [1, 2, 3]},
        np.arange(100_000, dtype=np.float64),
        pd.DataFrame({"x": np.arange(1000), "s": [f"v{i}" for i in range(1000)]}),
        (1, "a pickle"),
    ],
    ids=["json", "numpy", "pandas", "pickle"],
)
def test_a_corrupted_blob_fails_the_read_naming_the_artifact_and_its_producer(tmp_path: Path, value: object):
    store = LocalArtifactStore(tmp_path / "store")
    ref = save_value(store, value, producer=PRODUCER)
    assert ref.metadata["producer"] == PRODUCER
    corrupt(store, ref.digest)
    with pytest.raises(DigestMismatchError) as raised:
        load_value(store, ref, allow_pickle=True)
    message = str(raised.value)
    assert ref.uri in message and ref.digest in message
    assert "output 'train' of step 'Preprocess'" in message
    assert "pipeline 'abalone'" in message and "run manual__1" in message


def test_a_corrupted_file_inside_a_folder_names_the_folder_the_file_and_the_producer(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(100_000))
    ref = save_value(store, folder, producer=PRODUCER)
    corrupt(store, digest_of((folder / "sub" / "weights.bin").read_bytes()))
    destination = tmp_path / "dest"
    destination.mkdir()
    with pytest.raises(DigestMismatchError, match=r"step 'Preprocess'.*file sub/weights.bin of the folder"):
        materialize(store, ref, destination)
    assert not (destination / "sub" / "weights.bin").exists()
    assert list(destination.rglob(".mlpipe-tmp-*")) == []


def test_a_reference_without_producer_still_names_the_artifact(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    ref = save_value(store, np.ones(10))
    corrupt(store, ref.digest)
    with pytest.raises(DigestMismatchError, match=f"artifact {ref.uri} \\(numpy\\)"):
        load_value(store, ref)


# -- reading without copies ------------------------------------------------------------------------
def test_a_local_array_is_a_verified_private_map_of_the_blob(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    original = np.arange(1_000_000, dtype=np.int64).reshape(1000, 1000)
    ref = save_value(store, original)
    loaded = load_value(store, ref)
    np.testing.assert_array_equal(loaded, original)
    assert type(loaded) is np.ndarray
    # No copy of the bytes: the array's memory is the map of the blob.
    assert loaded.base is not None and not loaded.flags.owndata
    # Writable, copy on write: the step's changes never reach the blob.
    loaded[0, 0] = -1
    assert load_value(store, ref)[0, 0] == 0
    store.open_blob(ref.digest).verify()


def test_a_fortran_ordered_array_round_trips_through_the_map(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    original = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    loaded = load_value(store, save_value(store, original))
    np.testing.assert_array_equal(loaded, original)
    assert loaded.flags.f_contiguous


def test_a_blob_written_by_numpy_save_keeps_its_digest(tmp_path: Path):
    """The .npy bytes are numpy.save's: arrays stored before keep their digests."""
    store = LocalArtifactStore(tmp_path / "store")
    array = np.linspace(0, 1, 10_000).reshape(100, 100)
    np.save(tmp_path / "a.npy", array, allow_pickle=False)
    assert save_value(store, array).digest == digest_of((tmp_path / "a.npy").read_bytes())


def test_a_npy_blob_holding_objects_is_refused(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    blob = store.put_file(tmp_path / "objects.npy")
    ref = ArtifactRef(blob.uri, blob.digest, "numpy", blob.size, {})
    with pytest.raises(ArtifactError, match="holds Python objects"):
        load_value(store, ref)
