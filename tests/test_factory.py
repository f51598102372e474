"""The DAG factory: pipeline -> DAG, parameters -> Params, the dags-folder loader and its import errors."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.model import (
    FunctionStep,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
    Pipeline,
    RetryPolicy,
)
from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

GOOD_SPEC = """\
name: {name}
parameters:
  - {{name: Depth, type: Integer, default: 3}}
steps:
  - {{name: First, type: function, function: "json:dumps", arguments: {{obj: {{param: Depth}}}}}}
  - {{name: Second, type: function, function: "json:loads", arguments: {{s: {{step: First, output: result}}}}}}
"""

LOADER = "from airflow_provider_mlpipe.factory import load_pipeline_dags\n\nload_pipeline_dags(globals())\n"


def edges(dag) -> set[tuple[str, str]]:
    return {(upstream, task.task_id) for task in dag.tasks for upstream in task.upstream_task_ids}


def test_one_task_per_step_with_dependencies_and_typed_params():
    from airflow_provider_mlpipe.factory import build_dag

    first = FunctionStep("First", function="json:dumps", arguments={"obj": 1})
    second = FunctionStep(
        "Second",
        function="json:loads",
        arguments={"s": first.output("result")},
        retry_policy=RetryPolicy(max_attempts=4, interval_seconds=2, backoff_rate=3, max_interval_seconds=30),
    )
    third = FunctionStep("Third", function="json:dumps", arguments={"obj": 2}, depends_on=[second])
    pipeline = Pipeline(
        "factory_shape",
        [
            ParameterInteger("Depth", default_value=3, description="tree depth"),
            ParameterFloat("Rate", default_value=0.5),
            ParameterString("Mode", default_value="fast", enum_values=["fast", "slow"]),
            ParameterBoolean("Flag", default_value=False),
            ParameterString("Required"),
        ],
        [first, second, third],
    )
    dag = build_dag(pipeline)

    assert dag.dag_id == "factory_shape"
    assert sorted(dag.task_ids) == ["First", "Second", "Third", OUTCOME_TASK_ID]
    assert edges(dag) == {
        ("First", "Second"),
        ("Second", "Third"),
        *((name, OUTCOME_TASK_ID) for name in ("First", "Second", "Third")),
    }
    # Edges say what they carry: the output read, or nothing for a plain depends_on.
    assert dag.get_edge_info("First", "Second") == {"label": "result"}
    assert dag.get_edge_info("Second", "Third") == {}
    outcome = dag.get_task(OUTCOME_TASK_ID)
    assert outcome.trigger_rule == "none_failed"
    assert outcome.inherits_from_empty_operator
    assert "mlpipe" in dag.tags
    schemas = {name: param.schema for name, param in dag.params.items()}
    assert schemas["Depth"]["type"] == "integer"
    assert schemas["Rate"]["type"] == "number"
    assert schemas["Mode"]["type"] == "string"
    assert schemas["Mode"]["enum"] == ["fast", "slow"]
    assert schemas["Flag"]["type"] == "boolean"
    assert dag.params.get_param("Depth").value == 3
    assert not dag.params.get_param("Required").has_value
    retried = dag.get_task("Second")
    assert retried.retries == 3
    assert retried.retry_delay.total_seconds() == 2
    assert retried.retry_exponential_backoff == 3
    assert retried.max_retry_delay.total_seconds() == 30


def test_yaml_and_python_examples_have_the_same_shape():
    from airflow_provider_mlpipe.discovery import load_pipelines_from_python
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.spec import load_pipeline_file

    from_yaml = build_dag(load_pipeline_file(DAGS / "abalone.pipeline.yaml"))
    (python_pipeline,) = load_pipelines_from_python(DAGS / "abalone_python.py")
    from_python = build_dag(python_pipeline)

    assert from_yaml.dag_id == "abalone"
    assert from_python.dag_id == "abalone_python"
    assert sorted(from_yaml.task_ids) == sorted(from_python.task_ids)
    assert edges(from_yaml) == edges(from_python)
    assert {n: p.schema for n, p in from_yaml.params.items()} == {
        n: p.schema for n, p in from_python.params.items()
    }
    assert ("CheckMse", "RegisterModel") in edges(from_yaml)
    assert ("CheckMse", "FailOnMse") in edges(from_yaml)
    assert from_yaml.get_edge_info("CheckMse", "RegisterModel") == {"label": "if branch"}
    assert from_yaml.get_edge_info("CheckMse", "FailOnMse") == {"label": "else branch"}
    assert from_yaml.get_edge_info("Preprocess", "Train") == {"label": "train, validation"}
    assert from_yaml.get_edge_info("Evaluate", "CheckMse") == {"label": "evaluation"}
    for dag in (from_yaml, from_python):
        labels = {(up, down): dag.get_edge_info(up, down).get("label") for up, down in edges(dag)}
        assert labels == {
            (up, down): from_yaml.get_edge_info(up, down).get("label") for up, down in edges(from_yaml)
        }


def test_dagbag_imports_the_dags_folder_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {"abalone", "abalone_python"} <= set(bag.dag_ids)


def test_a_broken_spec_is_an_import_error_of_that_file_only(tmp_path: Path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "mlpipe_pipelines.py").write_text(LOADER)
    (tmp_path / "good.pipeline.yaml").write_text(GOOD_SPEC.format(name="good_one"))
    (tmp_path / "also_good.pipeline.yaml").write_text(GOOD_SPEC.format(name="good_two"))
    broken = GOOD_SPEC.format(name="broken").replace("output: result", "output: nothing")
    (tmp_path / "broken.pipeline.yaml").write_text(broken)
    (tmp_path / "invalid.pipeline.yaml").write_text("name: invalid\nsteps: [\n")

    bag = DagBag(dag_folder=str(tmp_path))

    assert set(bag.dag_ids) == {"good_one", "good_two"}
    # One import error, on the loader file Airflow parsed, naming each broken spec, step, field, line.
    errors = {Path(path).name: message for path, message in bag.import_errors.items()}
    assert set(errors) == {"mlpipe_pipelines.py"}
    message = errors["mlpipe_pipelines.py"]
    assert "2 pipeline specs not loaded" in message
    assert "Second" in message
    assert "nothing" in message
    assert "arguments.s" in message
    assert "broken.pipeline.yaml:6" in message
    assert "invalid.pipeline.yaml:3" in message

    # Fixed specs load, and the next parse of the loader has no error left.
    (tmp_path / "broken.pipeline.yaml").write_text(GOOD_SPEC.format(name="broken"))
    (tmp_path / "invalid.pipeline.yaml").unlink()
    bag = DagBag(dag_folder=str(tmp_path))
    assert set(bag.dag_ids) == {"good_one", "good_two", "broken"}
    assert bag.import_errors == {}


def test_duplicate_pipeline_names_keep_the_first_and_report_the_second(tmp_path: Path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "mlpipe_pipelines.py").write_text(LOADER)
    (tmp_path / "a.pipeline.yaml").write_text(GOOD_SPEC.format(name="same"))
    (tmp_path / "b.pipeline.yaml").write_text(GOOD_SPEC.format(name="same"))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.dag_ids == ["same"]
    errors = {Path(path).name: message for path, message in bag.import_errors.items()}
    assert list(errors) == ["mlpipe_pipelines.py"]
    assert "b.pipeline.yaml" in errors["mlpipe_pipelines.py"]
    assert "already used" in errors["mlpipe_pipelines.py"]


def test_parsing_context_builds_only_the_requested_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow_provider_mlpipe.factory import load_pipeline_dags

    for index in range(5):
        (tmp_path / f"p{index}.pipeline.yaml").write_text(GOOD_SPEC.format(name=f"pipe_{index}"))
    # A broken spec of another pipeline is not even read when a worker asks for one DAG.
    (tmp_path / "zz.pipeline.yaml").write_text("name: other\nsteps: [\n")

    assert len(load_pipeline_dags(folder=tmp_path)) == 5
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "pipe_3")
    with_context = load_pipeline_dags(folder=tmp_path)
    assert list(with_context) == ["pipe_3"]


def test_example_folder_layout_is_ignored_by_the_dag_parser(tmp_path: Path):
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder)
    (folder / "abalone" / "scripts" / "not_a_dag.py").write_text(
        textwrap.dedent("from airflow.sdk import DAG\nraise RuntimeError('parsed a script')\n")
    )
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
