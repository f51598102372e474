"""Lineage of real runs: which data, code and parameters produced a model version; which models used a
data set; as a table, JSON and a picture, from Python and from ``mlpipe lineage``."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from airflow_provider_mlpipe.exceptions import LineageNotFoundError
from tests.project import make_project

pytestmark = pytest.mark.usefixtures("airflow_home")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One full run of the project, then a second one that takes Prep and Train from the cache."""
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.model import Pipeline

    name = f"lineage_{uuid.uuid4().hex[:8]}"
    spec = make_project(tmp_path_factory.mktemp("lineage") / "project", name)
    # A data set of its own: the store is shared by the session's tests, and other projects' runs of
    # the same bytes are downstream of the same digest.
    raw = spec.parent / "data" / "raw.csv"
    raw.write_text(raw.read_text() + f"{int(name[-8:], 16)},0\n")
    pipeline = Pipeline.from_yaml(spec)
    first = pipeline.start(session=LocalSession(), parameters={"Alpha": 0.75}).execution_id
    second = pipeline.start(session=LocalSession(), parameters={"Alpha": 0.75}).execution_id
    data = (spec.parent / "data" / "raw.csv").read_bytes()
    return {
        "name": name,
        "spec": spec,
        "first": first,
        "second": second,
        "data": hashlib.sha256(data).hexdigest(),
    }


def test_upstream_of_a_model_version_names_its_data_code_and_parameters(ran: dict):
    from airflow_provider_mlpipe.lineage import lineage

    graph = lineage(f"{ran['name']}:1")

    steps = {node["step"]: node for node in graph.steps()}
    assert set(steps) == {"Prep", "Train", "Register"}
    assert steps["Train"]["parameters"] == {"Alpha": 0.75} and steps["Train"]["run_id"] == ran["first"]
    assert {"train_fn.py", "modeling/__init__.py", "modeling/weights.py"} <= set(steps["Train"]["code_files"])
    assert {"prep.py", "helpers.py"} <= set(steps["Prep"]["code_files"])
    assert steps["Prep"]["code_digest"].startswith("sha256:")
    [data] = graph.data()
    assert data["digest"] == "sha256:" + ran["data"] and data["location"] == "data/raw.csv"
    [model] = graph.models()
    assert model["group"] == ran["name"] and model["version"] == 1

    # Version 2 was registered by the second run, whose Prep and Train were cache hits: what produced
    # its model is still the first run's computation.
    later = {node["step"]: node for node in lineage(f"{ran['name']}:2").steps()}
    assert later["Register"]["run_id"] == ran["second"]
    assert later["Train"]["run_id"] == ran["first"] and not later["Train"]["cache_hit"]


def test_downstream_of_a_data_set_reaches_every_model_that_used_it(ran: dict):
    from airflow_provider_mlpipe.lineage import lineage

    graph = lineage(ran["data"], direction="downstream")  # the file's sha256sum, as a user has it

    assert {(model["group"], model["version"]) for model in graph.models()} == {
        (ran["name"], 1),
        (ran["name"], 2),
    }
    cached = [node for node in graph.steps() if node["cache_hit"]]
    assert {node["step"] for node in cached} == {"Prep", "Train"}
    assert all(node["run_id"] == ran["second"] and node["source_run_id"] == ran["first"] for node in cached)


def test_lineage_of_what_nobody_wrote_or_read_is_a_clear_error(ran: dict):
    from airflow_provider_mlpipe.lineage import lineage

    with pytest.raises(
        LineageNotFoundError, match="no step wrote or read an artifact with digest sha256:0000"
    ):
        lineage("0" * 64)
    with pytest.raises(LineageNotFoundError, match="has no version 99|no version 99|99"):
        lineage(f"{ran['name']}:99")
    with pytest.raises(LineageNotFoundError, match="neither a model version"):
        lineage("not-an-id")


def test_mlpipe_lineage_prints_a_table_json_and_pictures(ran: dict, tmp_path: Path, capsys):
    from airflow_provider_mlpipe.cli.main import main

    assert main(["lineage", f"{ran['name']}:1"]) == 0
    table = capsys.readouterr().out
    assert "upstream lineage of model:" in table and "Alpha" in table and "data/raw.csv" in table

    assert main(["lineage", ran["data"], "--downstream", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["direction"] == "downstream"
    assert {node["type"] for node in document["nodes"]} == {"artifact", "step", "model"}

    html = ["lineage", ran["data"], "--downstream", "--format", "html", "-o", str(tmp_path / "l.html")]
    assert main(html) == 0
    page = (tmp_path / "l.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "cache hit" in page

    assert main(["lineage", f"{ran['name']}:1", "--format", "svg", "-o", str(tmp_path / "l.svg")]) == 0
    import xml.etree.ElementTree as ElementTree

    picture = ElementTree.parse(tmp_path / "l.svg").getroot()  # well-formed
    labels = [text.text for text in picture.iter("{http://www.w3.org/2000/svg}text")]
    assert "Train (training)" in labels and f"{ran['name']} v1" in labels

    assert main(["lineage", "0" * 64]) == 2
    assert "no step wrote or read an artifact" in capsys.readouterr().err
