"""What the view's Lineage section reads (``plugins/run_lineage.py`` and the model lineage endpoint),
on real runs in the test DB: each step's inputs and outputs with digests, code, parameters, and the
origin of cached outputs."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from fastapi import HTTPException

from tests.project import make_project

pytestmark = pytest.mark.usefixtures("airflow_home")


def lineage_of(dag_id: str, run_id: str) -> dict:
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_mlpipe.plugins.run_lineage import run_lineage

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return run_lineage(dag, run, session=session)


def test_a_runs_lineage_and_its_models_lineage(tmp_path: Path):
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.model import Pipeline
    from airflow_provider_mlpipe.plugins.api import model_lineage

    name = f"view_lineage_{uuid.uuid4().hex[:8]}"
    spec = make_project(tmp_path / "project", name)
    first = Pipeline.from_yaml(spec).start(session=LocalSession()).execution_id
    second = Pipeline.from_yaml(spec).start(session=LocalSession(), parameters={"Unused": 3}).execution_id

    steps = {step["name"]: step for step in lineage_of(name, second)["steps"]}
    assert [step for step in steps] == ["Prep", "Train", "Register"]
    prep = steps["Prep"]
    assert prep["cache_hit"] and prep["source_run_id"] == first
    [raw] = prep["inputs"]
    data = (spec.parent / "data" / "raw.csv").read_bytes()
    assert raw == {
        "name": "inputs.raw",
        "kind": "literal",
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "type": "file",
        "size": len(data),
        "location": "data/raw.csv",
        "step": None,
        "output": None,
    }
    assert [item["name"] for item in prep["outputs"]] == ["clean"]
    assert (
        steps["Train"]["parameters"] == {"Alpha": 0.5}
        and "modeling/weights.py" in steps["Train"]["code_files"]
    )
    assert steps["Train"]["inputs"][0]["step"] == "Prep" and steps["Train"]["inputs"][0]["output"] == "clean"
    assert not steps["Register"]["cache_hit"] and steps["Register"]["model"] == {"group": name, "version": 2}

    graph = model_lineage(name, name, 2)
    assert {node["step"] for node in graph["nodes"] if node["type"] == "step"} == {
        "Prep",
        "Train",
        "Register",
    }
    with pytest.raises(HTTPException) as unknown:
        model_lineage(name, name, 9)
    assert unknown.value.status_code == 404
    with pytest.raises(HTTPException) as foreign:
        model_lineage("another_pipeline", name, 1)
    assert (
        foreign.value.status_code == 404
        and "not registered by pipeline 'another_pipeline'" in foreign.value.detail
    )
