"""Built DAGs kept between parses: taken back only while the spec, the code that builds it, Airflow's
configuration and every step's code and literal inputs are the same; a kept DAG is the DAG a build
makes, down to its serialized form, and it runs."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.dag_cache import BuiltDag, DagCache
from airflow_provider_mlpipe.factory import build_dag, load_pipeline_dags
from airflow_provider_mlpipe.fingerprint import step_sources
from airflow_provider_mlpipe.spec import load_pipeline_file
from airflow_provider_mlpipe.spec.parse_cache import ParseCache
from tests.spec.test_control_spec import HEAD, LOOP_AND_FAN_OUT

EXAMPLES = Path(__file__).resolve().parents[1] / "dags"
# A loop, a fan-out over its result, and a condition.
CONTROL_STEPS = (
    LOOP_AND_FAN_OUT
    + """\
  - name: Check
    type: condition
    conditions: [{ge: [{param: Target}, 1.0]}]
    if_steps: [Report]
  - {name: Report, type: function, function: "m:prepare", depends_on: [Sweep]}
"""
)
PROCESSING_SPEC = """\
name: reads_a_file
steps:
  - name: Count
    type: processing
    code: count.py
    inputs:
      rows: rows.csv
    outputs: [counted]
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "parse-cache"
    monkeypatch.setenv("AIRFLOW__MLPIPE__PARSE_CACHE", str(folder))
    return folder


def serialized(dag) -> str:
    from airflow.serialization.serialized_objects import DagSerialization

    return json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str)


def kept_dags(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.dag.pickle"))


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """The examples' specs and scripts, and a spec with a loop, a fan-out and a condition."""
    folder = tmp_path / "dags"
    shutil.copytree(
        EXAMPLES,
        folder,
        ignore=shutil.ignore_patterns("abalone_python.py", "mlpipe_pipelines.py", "data", "__pycache__"),
    )
    (folder / "m.py").write_text("def prepare():\n    return 1\n")
    (folder / "control.pipeline.yaml").write_text(HEAD.lstrip() + CONTROL_STEPS)
    return folder


def test_a_kept_dag_serializes_as_a_fresh_build(examples: Path, cache_dir: Path, monkeypatch):
    first = load_pipeline_dags(folder=examples)
    assert sorted(first) == ["abalone", "abalone_control", "control"]
    assert len(kept_dags(cache_dir)) == 3
    second = load_pipeline_dags(folder=examples)
    monkeypatch.setenv("AIRFLOW__MLPIPE__PARSE_CACHE", "off")
    fresh = load_pipeline_dags(folder=examples)
    for name, dag in second.items():
        assert dag is not first[name]
        assert serialized(dag) == serialized(fresh[name]), name
    # Fan-out steps: the mapped task and its item list survive the round trip.
    assert "_Sweep.each" in {task.task_id for task in second["control"].tasks}


def test_a_kept_dag_is_what_the_loader_uses_until_a_code_file_changes(tmp_path: Path, cache_dir: Path):
    """Proves kept DAGs are really taken back: one marked differently for the same spec is used."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "helpers.py").write_text("def prepare():\n    return [1, 2]\n")
    spec = folder / "alpha.pipeline.yaml"
    spec.write_text(
        'name: alpha\nsteps:\n  - {name: Prepare, type: function, function: "helpers.py:prepare"}\n'
    )
    pipeline = load_pipeline_file(spec)
    pipeline.description = "kept"
    marked = build_dag(pipeline)
    cache = DagCache(ParseCache(cache_dir))
    sources = {name: step_sources(step) for name, step in pipeline.steps.items()}
    key = cache.key(str(spec), spec.absolute().parent, spec.read_text())
    cache.cache.keep(cache.entry(str(spec)), key, BuiltDag(pipeline, marked, sources))
    assert load_pipeline_dags(folder=folder)["alpha"].description == "kept"

    # The step's code changed: its digest differs from the kept DAG's, so the DAG is built again.
    (folder / "helpers.py").write_text("def prepare():\n    return [1, 2, 3]\n")
    rebuilt = load_pipeline_dags(folder=folder)["alpha"]
    assert rebuilt.description is None
    assert (
        rebuilt.get_task("Prepare").mlpipe_step["digest"] != marked.get_task("Prepare").mlpipe_step["digest"]
    )
    # ... and kept in its place.
    assert load_pipeline_dags(folder=folder)["alpha"].get_task("Prepare").mlpipe_step == (
        rebuilt.get_task("Prepare").mlpipe_step
    )


@pytest.fixture
def reads_a_file(tmp_path: Path) -> Path:
    """A folder with a processing step whose script and input file are beside its spec."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "count.py").write_text("print('counting')\n")
    (folder / "rows.csv").write_text("a\n1\n")
    (folder / "reads.pipeline.yaml").write_text(PROCESSING_SPEC)
    return folder


def test_a_changed_literal_input_file_builds_the_dag_again(reads_a_file: Path, cache_dir: Path):
    folder = reads_a_file
    before = load_pipeline_dags(folder=folder)["reads_a_file"].get_task("Count").mlpipe_sources
    (folder / "rows.csv").write_text("a\n1\n2\n")
    after = load_pipeline_dags(folder=folder)["reads_a_file"].get_task("Count").mlpipe_sources
    assert after["literal_inputs"]["inputs.rows"] != before["literal_inputs"]["inputs.rows"]
    assert after["literal_inputs"]["inputs.rows"] is not None


def test_another_airflow_configuration_builds_the_dag_again(tmp_path: Path, cache_dir: Path, monkeypatch):
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "m.py").write_text("def prepare():\n    return 1\n")
    (folder / "one.pipeline.yaml").write_text(
        'name: one\nsteps:\n  - {name: A, type: function, function: "m:prepare"}\n'
    )
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "7")
    assert load_pipeline_dags(folder=folder)["one"].max_active_tasks == 7
    assert load_pipeline_dags(folder=folder)["one"].max_active_tasks == 7  # kept
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "5")
    assert load_pipeline_dags(folder=folder)["one"].max_active_tasks == 5
    # Each configuration keeps its own DAG: processes that parse with different settings (the DAG
    # processor, a worker) do not replace each other's entry at every parse.
    assert len(kept_dags(cache_dir)) == 2
    kept = {entry: entry.stat().st_mtime_ns for entry in kept_dags(cache_dir)}
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "7")
    assert load_pipeline_dags(folder=folder)["one"].max_active_tasks == 7
    assert {entry: entry.stat().st_mtime_ns for entry in kept_dags(cache_dir)} == kept


def test_a_deleted_script_is_an_import_error_not_a_kept_dag(reads_a_file: Path, cache_dir: Path):
    folder = reads_a_file
    assert list(load_pipeline_dags(folder=folder)) == ["reads_a_file"]
    (folder / "count.py").unlink()
    with pytest.warns(UserWarning, match=r"script file not found: .*count\.py"):
        assert load_pipeline_dags(folder=folder) == {}


@pytest.mark.usefixtures("airflow_home")
def test_a_kept_dag_runs(tmp_path: Path, cache_dir: Path, monkeypatch):
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
    from airflow_provider_mlpipe.artifacts.serializers import load_value
    from airflow_provider_mlpipe.local_runner import run_dag_locally
    from airflow_provider_mlpipe.settings import artifact_store_for

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "helpers.py").write_text(
        textwrap.dedent(
            """\
            def prepare():
                return [1, 2, 3]


            def total(rows):
                return sum(rows)
            """
        )
    )
    (folder / "sums.pipeline.yaml").write_text(
        textwrap.dedent(
            """\
            name: sums_from_a_kept_dag
            steps:
              - {name: Prepare, type: function, function: "helpers.py:prepare"}
              - name: Total
                type: function
                function: "helpers.py:total"
                arguments: {rows: {step: Prepare, output: result}}
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    load_pipeline_dags(folder=folder)
    assert len(kept_dags(cache_dir)) == 1
    kept = load_pipeline_dags(folder=folder)["sums_from_a_kept_dag"]
    result = run_dag_locally(kept)
    assert result.state == "success"
    total = ArtifactRef.from_dict(result.task("Total").return_value["outputs"]["result"])
    assert load_value(artifact_store_for(), total) == 6
