"""Step caching, run for real through Airflow (local mode on the test DB): a hit does no work and says
so; whatever a step reads (its code, a parameter it reads, an input's content) makes a miss; bad
entries are misses, never failures."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.project import make_project, runs

pytestmark = pytest.mark.usefixtures("airflow_home")


def start(spec: Path, **options):
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.model import Pipeline

    session = LocalSession()
    run_id = Pipeline.from_yaml(spec).start(session=session, **options).execution_id
    return session, run_id


def steps_of(spec: Path, session, run_id: str) -> dict:
    name = spec.name.removesuffix(".pipeline.yaml")
    return {step.step_name: step for step in session.list_steps(name, run_id)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project", f"cached_{uuid.uuid4().hex[:8]}")


def test_a_repeated_run_takes_the_cached_outputs_and_does_no_work(project: Path):
    from airflow_provider_mlpipe.cli.output import steps_table

    session, first = start(project)
    assert runs(project.parent, "prep") == 1 and runs(project.parent, "train") == 1

    # Another run id, and another value of a parameter no step reads: the same fingerprints.
    session, second = start(project, parameters={"Unused": 7}, run_id=f"renamed-{uuid.uuid4().hex[:6]}")

    steps = steps_of(project, session, second)
    assert runs(project.parent, "prep") == 1 and runs(project.parent, "train") == 1
    for name in ("Prep", "Train"):
        assert steps[name].status == "success"
        assert steps[name].cache_hit and steps[name].source_run_id == first
        assert steps[name].note.startswith(f"cache hit: outputs of run {first}")
    first_steps = steps_of(project, session, first)
    assert steps["Train"].outputs == first_steps["Train"].outputs
    assert steps["Train"].metadata == first_steps["Train"].metadata  # the metrics came along
    # The registration is not cached: the second run registered its own version.
    assert steps["Register"].metadata["version"] == first_steps["Register"].metadata["version"] + 1
    table = steps_table(session.list_steps(project.name.removesuffix(".pipeline.yaml"), second))
    assert f"cache hit: outputs of run {first}" in table


def test_a_parameter_the_step_reads_its_code_and_its_input_content_make_misses(project: Path):
    root = project.parent
    start(project)

    start(project, parameters={"Alpha": 0.25})  # read by Train only
    assert (runs(root, "prep"), runs(root, "train")) == (1, 2)

    # Another size too: Python trusts a cached .pyc whose source has the same size and mtime second.
    (root / "scripts" / "helpers.py").write_text("def clean(value):\n    return round(value * 3.5, 3)\n")
    start(project, parameters={"Alpha": 0.25})  # Prep's helper changed, and so its output
    assert (runs(root, "prep"), runs(root, "train")) == (2, 3)

    (root / "data" / "raw.csv").write_text("x,y\n5,6\n")  # the same path, other content
    session, run_id = start(project, parameters={"Alpha": 0.25})
    assert (runs(root, "prep"), runs(root, "train")) == (3, 4)
    assert not steps_of(project, session, run_id)["Prep"].cache_hit


def test_no_cache_forces_misses_and_refreshes_the_entries(project: Path):
    from airflow_provider_mlpipe.cache import StepCache
    from airflow_provider_mlpipe.settings import artifact_store_for

    start(project)
    session, forced = start(project, no_cache=True)

    assert (runs(project.parent, "prep"), runs(project.parent, "train")) == (2, 2)
    assert session.describe(project.name.removesuffix(".pipeline.yaml"), forced).no_cache
    entries = StepCache(artifact_store_for()).entries(project.name.removesuffix(".pipeline.yaml"))
    assert {entry.step: entry.run_id for _, entry in entries} == {"Prep": forced, "Train": forced}


def test_expired_corrupt_and_orphaned_entries_are_misses_never_failures(project: Path):
    from airflow_provider_mlpipe.cache import StepCache
    from airflow_provider_mlpipe.settings import artifact_store_for

    name = project.name.removesuffix(".pipeline.yaml")
    store = artifact_store_for()
    start(project)
    keys = {entry.step: key for key, entry in StepCache(store).entries(name)}

    # Prep's entry is 31 days old (P30D), Train's is not JSON.
    entry = json.loads(store.read_document(keys["Prep"]))
    store.write_document(
        keys["Prep"], json.dumps({**entry, "created_at": "2000-01-01T00:00:00+00:00"}).encode()
    )
    store.write_document(keys["Train"], b"{not json")
    session, second = start(project)
    assert (runs(project.parent, "prep"), runs(project.parent, "train")) == (2, 2)
    assert steps_of(project, session, second)["Train"].status == "success"
    # Both entries were replaced by this run's results.
    assert {entry.step: entry.run_id for _, entry in StepCache(store).entries(name)} == {
        "Prep": second,
        "Train": second,
    }

    # An entry whose artifact is gone (a blob deleted behind the store's back) is a miss too.
    model = json.loads(store.read_document(keys["Train"]))["outputs"]["model"]
    manifest = json.loads(store.get_bytes(model["digest"]))
    blob = next(iter(manifest["files"].values()))["digest"].removeprefix("sha256:")
    (Path(store.root) / "objects" / "sha256" / blob[:2] / blob).unlink()
    session, third = start(project)
    assert runs(project.parent, "train") == 3
    assert steps_of(project, session, third)["Train"].status == "success"


def test_a_bad_expire_after_is_refused_with_its_line(tmp_path: Path):
    from airflow_provider_mlpipe.exceptions import SpecError
    from airflow_provider_mlpipe.model import Pipeline

    spec = make_project(tmp_path, "bad_expiry", cache="{enabled: true, expire_after: 30 days}")
    with pytest.raises(SpecError) as refused:
        Pipeline.from_yaml(spec)
    assert refused.value.field == "cache.expire_after" and refused.value.line == 2
    assert "ISO-8601 duration" in str(refused.value)


def test_cache_list_and_clear(project: Path, capsys):
    from airflow_provider_mlpipe.cli.main import main

    name = project.name.removesuffix(".pipeline.yaml")
    _, run_id = start(project)
    capsys.readouterr()

    assert main(["cache", "list", "--pipeline", name]) == 0
    listing = capsys.readouterr().out
    assert listing.count(run_id) == 2 and "Prep" in listing and "Train" in listing

    assert main(["cache", "clear", "--pipeline", name, "--step", "Train"]) == 0
    assert "Removed 1 cache entry" in capsys.readouterr().out
    assert main(["cache", "list", "--pipeline", name]) == 0
    listing = capsys.readouterr().out
    assert "Prep" in listing and "Train" not in listing
    start(project)
    assert (runs(project.parent, "prep"), runs(project.parent, "train")) == (1, 2)
