"""What the serialized DAG says of a step's sources (``sources_manifest``): short digests of its code
files and its literal inputs' digests, trimmed to stay under Airflow's template field limit."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_provider_mlpipe.fingerprint import (
    MAX_SOURCES_CHARS,
    SHORT_DIGEST,
    _json_length_bound,
    code_inventory,
    sources_manifest,
)
from airflow_provider_mlpipe.model import FunctionStep


def step_with_code_files(folder: Path, names: list[str]) -> FunctionStep:
    for name in names:
        (folder / name).write_text(f"# {name}\n")
    (folder / "main.py").write_text("def run():\n    return 1\n")
    step = FunctionStep(name="Train", function="main.py:run", code_files=names)
    step.base_dir = folder
    return step


def test_a_small_manifest_keeps_every_code_file(tmp_path: Path):
    step = step_with_code_files(tmp_path, ["a.py", "b.py"])
    inventory = code_inventory(step)

    manifest = sources_manifest(step, inventory)

    assert manifest["code_files"] == {name: digest[:SHORT_DIGEST] for name, digest in inventory.items()}
    assert set(manifest["code_files"]) == {"main.py", "a.py", "b.py"}
    assert manifest["literal_inputs"] == {}


def test_a_manifest_over_the_limit_drops_its_per_file_details(tmp_path: Path):
    names = [f"helper_module_with_a_long_name_{index:03d}.py" for index in range(120)]
    step = step_with_code_files(tmp_path, names)
    inventory = code_inventory(step)
    assert len(json.dumps({"code_files": inventory})) > MAX_SOURCES_CHARS

    manifest = sources_manifest(step, inventory)

    assert manifest == {"code_files": None, "literal_inputs": {}}


def test_the_size_bound_is_never_below_the_serialized_size():
    # Names that JSON escapes (quotes, control characters, non-ASCII, characters outside the BMP).
    names = ['a"b.py', "tab\there.py", "données.py", "数据.py", "emoji_\U0001f600.py", "\\x.py", ""]
    for name in names:
        for value in ("0123456789abcdef", None, "sha256:" + "f" * 64, "é\U0001f600"):
            manifest = {"code_files": {name: "0123456789abcdef"}, "literal_inputs": {f"inputs.{name}": value}}
            assert _json_length_bound(manifest) >= len(json.dumps(manifest)), manifest
    many = {"code_files": {f"\U0001f600{index}": "x" * 16 for index in range(50)}, "literal_inputs": {}}
    assert _json_length_bound(many) >= len(json.dumps(many))
