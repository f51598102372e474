"""Airflow's OpenLineage provider emits each step's input and output datasets: a real ``mlpipe run``
in a subprocess, with the provider's file transport capturing the events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.project import make_project

pytestmark = pytest.mark.usefixtures("airflow_home")


def test_openlineage_events_carry_each_steps_datasets(tmp_path: Path):
    pytest.importorskip("airflow.providers.openlineage")
    name = f"openlineage_{uuid.uuid4().hex[:8]}"
    dags = tmp_path / "dags"
    spec = make_project(dags, name, cache="{enabled: false}")
    events_file = tmp_path / "events.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlpipe-test",
        # Emit in this process's threads, not in forked children: the run ends when its last event is out.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_mlpipe.cli.main", "run", name, "--dags-folder", str(dags)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in events
        if event.get("eventType") == "COMPLETE" and event["job"]["name"].startswith(f"{name}.")
    }
    assert {"Prep", "Train", "Register"} <= set(complete)

    raw = str((spec.parent / "data" / "raw.csv").absolute())
    prep_inputs = {(item["namespace"], item["name"]) for item in complete["Prep"]["inputs"]}
    assert ("file", raw) in prep_inputs
    [prep_output] = complete["Prep"]["outputs"]
    assert prep_output["namespace"] == "file" and "/objects/sha256/" in prep_output["name"]
    train_inputs = {(item["namespace"], item["name"]) for item in complete["Train"]["inputs"]}
    assert (prep_output["namespace"], prep_output["name"]) in train_inputs  # the artifact passed on
    assert len(complete["Train"]["outputs"]) == 2  # model and metrics
    model = {(item["namespace"], item["name"]) for item in complete["Train"]["outputs"]}
    assert {(item["namespace"], item["name"]) for item in complete["Register"]["inputs"]} <= model

    starts = [
        event
        for event in events
        if event.get("eventType") == "START" and event["job"]["name"] == f"{name}.Prep"
    ]
    assert starts and ("file", raw) in {(item["namespace"], item["name"]) for item in starts[0]["inputs"]}
