"""The parse cache: the model of an unchanged spec is taken back between DAG-file parses, while the
checks and code digests that look at other files run every time; anything odd costs only the speed-up."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.dag_cache import DagCache
from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.factory import SPEC_ERRORS_NAME, load_pipeline_dags
from airflow_provider_mlpipe.spec import load_pipeline_file
from airflow_provider_mlpipe.spec.parse_cache import ParseCache

SPEC = """\
name: {name}
description: {description}
steps:
  - name: Prepare
    type: function
    function: "helpers.py:prepare"
  - name: Train
    type: function
    function: "helpers.py:train"
    arguments: {{rows: {{step: Prepare, output: result}}}}
"""
HELPERS = "def prepare():\n    return [1, 2]\n\n\ndef train(rows):\n    return len(rows)\n"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "parse-cache"
    monkeypatch.setenv("AIRFLOW__MLPIPE__PARSE_CACHE", str(folder))
    return folder


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "helpers.py").write_text(HELPERS)
    for name in ("alpha", "beta"):
        (folder / f"{name}.pipeline.yaml").write_text(SPEC.format(name=name, description="first"))
    return folder


def model_and_dag_entries(cache_dir: Path, spec: Path) -> list[Path]:
    """The spec's model entry and its built DAG's (see test_dag_cache.py): kept and taken back alike."""
    cache = ParseCache(cache_dir)
    return [cache.entry(str(spec)), DagCache(cache).entry(str(spec))]


def digests(dag) -> dict[str, str]:
    return {task.task_id: task.mlpipe_step["digest"] for task in dag.tasks if hasattr(task, "mlpipe_step")}


def test_a_second_parse_builds_the_same_dags_from_one_private_entry_per_spec(specs: Path, cache_dir: Path):
    first = load_pipeline_dags(folder=specs)
    entries = sorted(cache_dir.glob("*.pickle"))
    # Per spec, its model and its built DAG (see test_dag_cache.py).
    assert len([entry for entry in entries if not entry.name.endswith(".dag.pickle")]) == 2
    assert len(entries) == 4
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    second = load_pipeline_dags(folder=specs)
    assert sorted(second) == sorted(first) == ["alpha", "beta"]
    for name in first:
        assert [task.task_id for task in second[name].tasks] == [task.task_id for task in first[name].tasks]
        assert digests(second[name]) == digests(first[name])
        assert second[name].description == "first"
    assert sorted(cache_dir.glob("*.pickle")) == entries


def test_an_entry_is_what_the_loader_uses_while_the_spec_is_unchanged(specs: Path, cache_dir: Path):
    """Proves entries are really taken back: one holding another model for the same spec text is used."""
    spec = specs / "alpha.pipeline.yaml"
    text = spec.read_text()
    cache = ParseCache(cache_dir)
    other = load_pipeline_file(spec)
    other.description = "from the cache"
    cache.put(str(spec), spec.absolute().parent, text, other)
    assert load_pipeline_dags(folder=specs)["alpha"].description == "from the cache"
    # Another text is another key: the edit is read, and replaces the entry.
    spec.write_text(SPEC.format(name="alpha", description="edited"))
    assert load_pipeline_dags(folder=specs)["alpha"].description == "edited"
    assert len([entry for entry in cache_dir.glob("*.pickle") if ".dag." not in entry.name]) == 2
    assert cache.get(str(spec), spec.absolute().parent, text) is None
    # The same text under another folder (another base for relative paths) is another key too.
    assert cache.get(str(spec), specs.parent, spec.read_text()) is None


def test_code_and_files_are_checked_on_every_parse(specs: Path, cache_dir: Path):
    before = digests(load_pipeline_dags(folder=specs)["alpha"])
    (specs / "helpers.py").write_text(HELPERS.replace("[1, 2]", "[1, 2, 3]"))
    after = digests(load_pipeline_dags(folder=specs)["alpha"])
    assert after["Prepare"] != before["Prepare"] and after["Train"] != before["Train"]

    (specs / "helpers.py").unlink()
    namespace: dict = {"__file__": str(specs / "pipelines.py")}
    with pytest.warns(UserWarning, match="not loaded"):
        assert load_pipeline_dags(namespace) == {}
    with pytest.raises(Exception) as raised:
        namespace[SPEC_ERRORS_NAME].validate()
    message = str(raised.value)
    for name in ("alpha", "beta"):
        assert f"{name}.pipeline.yaml" in message
    assert "helpers.py" in message and "Prepare" in message
    # The same message, line included, as a spec read without the cache.
    with pytest.raises(SpecError) as uncached:
        load_pipeline_file(specs / "alpha.pipeline.yaml")
    assert ":6, step 'Prepare', field 'function'" in str(uncached.value)
    assert str(uncached.value) in message


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda entry: entry.write_bytes(entry.read_bytes()[:80]), id="torn"),
        pytest.param(
            lambda entry: entry.write_bytes(entry.read_bytes()[:65] + b"not a pickle"), id="corrupt"
        ),
        pytest.param(
            lambda entry: entry.write_bytes(b"x" * 64 + b"\n" + entry.read_bytes()[65:]), id="stale"
        ),
        pytest.param(lambda entry: entry.write_bytes(b""), id="empty"),
    ],
)
def test_a_damaged_entry_is_read_again_and_rewritten(specs: Path, cache_dir: Path, damage) -> None:
    expected = digests(load_pipeline_dags(folder=specs)["alpha"])
    entries = model_and_dag_entries(cache_dir, specs / "alpha.pipeline.yaml")
    damaged = {}
    for entry in entries:
        damage(entry)
        damaged[entry] = entry.read_bytes()
    dags = load_pipeline_dags(folder=specs)
    assert digests(dags["alpha"]) == expected and dags["alpha"].description == "first"
    for entry in entries:
        assert entry.read_bytes() != damaged[entry]


def test_an_unusable_cache_folder_costs_only_the_speed_up(specs: Path, tmp_path: Path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("AIRFLOW__MLPIPE__PARSE_CACHE", str(blocked / "cache"))
    assert sorted(load_pipeline_dags(folder=specs)) == ["alpha", "beta"]
    assert not list(tmp_path.glob("**/*.pickle"))


def test_off_writes_nothing(specs: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__MLPIPE__PARSE_CACHE", "off")
    assert ParseCache.configured() is None
    assert sorted(load_pipeline_dags(folder=specs)) == ["alpha", "beta"]
    assert not list(tmp_path.glob("**/*.pickle"))
    monkeypatch.delenv("AIRFLOW__MLPIPE__PARSE_CACHE")
    configured = ParseCache.configured()
    assert configured is not None and configured.folder == tmp_path / "home" / "mlpipe" / "parse-cache"


def test_a_spec_that_does_not_read_is_never_kept(specs: Path, cache_dir: Path):
    (specs / "gamma.pipeline.yaml").write_text(textwrap.dedent("name: gamma\nsteps: [\n"))
    with pytest.warns(UserWarning, match="gamma"):
        dags = load_pipeline_dags(folder=specs)
    assert sorted(dags) == ["alpha", "beta"]
    assert not ParseCache(cache_dir).entry(str(specs / "gamma.pipeline.yaml")).exists()
    assert not [name for name in os.listdir(cache_dir) if name.endswith(".tmp")]


def test_past_its_size_the_least_recently_written_entries_go(specs: Path, cache_dir: Path):
    cache = ParseCache(cache_dir)
    cache.max_entries = 3
    pipeline = load_pipeline_file(specs / "alpha.pipeline.yaml")
    files = [str(specs / f"spec_{index}.pipeline.yaml") for index in range(5)]
    for index, file in enumerate(files):
        cache.put(file, specs, f"text {index}", pipeline)
        os.utime(cache.entry(file), ns=(index * 10**9, index * 10**9))  # written one second apart
    assert sorted(cache_dir.glob("*.pickle")) == sorted(cache.entry(file) for file in files[2:])
    assert cache.get(files[4], specs, "text 4") is not None and cache.get(files[0], specs, "text 0") is None


def test_an_entry_others_may_change_is_not_used(specs: Path, cache_dir: Path):
    load_pipeline_dags(folder=specs)
    spec = specs / "alpha.pipeline.yaml"
    cache = ParseCache(cache_dir)
    assert cache.get(str(spec), spec.absolute().parent, spec.read_text()) is not None
    for entry in model_and_dag_entries(cache_dir, spec):
        entry.chmod(0o666)
    assert cache.get(str(spec), spec.absolute().parent, spec.read_text()) is None
    assert load_pipeline_dags(folder=specs)["alpha"].description == "first"  # read again, and rewritten
    for entry in model_and_dag_entries(cache_dir, spec):
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_a_writer_killed_mid_write_leaves_nothing_after_the_next_write(specs: Path, cache_dir: Path):
    load_pipeline_dags(folder=specs)
    stray = cache_dir / ".entry-killed.tmp"
    stray.write_bytes(b"half an entry")
    os.utime(stray, (1, 1))
    fresh = cache_dir / ".entry-in-progress.tmp"
    fresh.write_bytes(b"another parse writing now")
    (specs / "alpha.pipeline.yaml").write_text(SPEC.format(name="alpha", description="edited"))
    assert load_pipeline_dags(folder=specs)["alpha"].description == "edited"
    assert not stray.exists() and fresh.exists()
