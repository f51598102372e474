"""The code a step runs, found statically: its script, the project-local modules it imports, and
declared ``code_files``; digests depend on content only."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.fingerprint import code_inventory, step_digest
from airflow_provider_mlpipe.model import FunctionStep, Pipeline, ProcessingStep


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A dags-folder-like project: a script importing a package of helpers (absolute, relative and
    conditional imports), an unrelated module, and installed modules that must not count."""
    root = tmp_path / "project"
    write(
        root / "scripts" / "prep.py",
        """
        import json
        import numpy
        from lib import features
        from lib.io import load
        try:
            import lib.optional as optional
        except ImportError:
            optional = None

        def main():
            import local_helper
        """,
    )
    write(root / "scripts" / "local_helper.py", "VALUE = 1\n")
    write(root / "lib" / "__init__.py", "")
    write(root / "lib" / "features.py", "from .scaling import scale\n")
    write(root / "lib" / "scaling.py", "def scale(x):\n    return x * 2\n")
    write(root / "lib" / "io.py", "def load():\n    return []\n")
    write(root / "lib" / "optional.py", "X = 1\n")
    write(root / "lib" / "unused.py", "Y = 1\n")
    write(root / "config" / "settings.yaml", "alpha: 1\n")
    return root


def processing(root: Path, **options) -> Pipeline:
    step = ProcessingStep("Prep", code="scripts/prep.py", **options)
    return Pipeline("code_test", steps=[step], base_dir=root)


def test_the_script_and_the_project_modules_it_imports_are_found(project: Path):
    files = code_inventory(processing(project).steps["Prep"])

    assert set(files) == {
        "prep.py",
        "local_helper.py",  # beside the script: Python puts the script's folder first on sys.path
        "lib/__init__.py",
        "lib/features.py",
        "lib/scaling.py",  # imported relatively by lib/features.py
        "lib/io.py",
        "lib/optional.py",  # a conditional import counts
    }
    # json and numpy are installed, not the project's; lib/unused.py is imported by nobody.


def test_a_changed_helper_changes_the_digest_and_an_unrelated_file_does_not(project: Path):
    before = processing(project).steps["Prep"].digest()
    (project / "lib" / "unused.py").write_text("Y = 2\n")
    assert processing(project).steps["Prep"].digest() == before

    (project / "lib" / "scaling.py").write_text("def scale(x):\n    return x * 3\n")
    assert processing(project).steps["Prep"].digest() != before


def test_declared_code_files_count_files_folders_and_globs(project: Path):
    pipeline = processing(project, code_files=["config/", "lib/unu*.py"])
    pipeline.validate()
    files = code_inventory(pipeline.steps["Prep"])
    assert {"config/settings.yaml", "lib/unused.py"} <= set(files)

    before = pipeline.steps["Prep"].digest()
    (project / "config" / "settings.yaml").write_text("alpha: 2\n")
    assert processing(project, code_files=["config/", "lib/unu*.py"]).steps["Prep"].digest() != before


def test_a_declared_code_file_that_names_nothing_is_refused(project: Path):
    with pytest.raises(SpecError, match=r"code_files: 'nothing/\*\.py' names no file") as refused:
        processing(project, code_files=["nothing/*.py"]).validate()
    assert refused.value.field == "code_files[0]"


def test_code_files_are_refused_on_a_step_that_runs_no_code():
    from airflow_provider_mlpipe.model import FailStep

    with pytest.raises(SpecError, match="runs no code"):
        FailStep("Stop", error_message="no", code_files=["x.py"])


def test_digests_depend_on_content_not_on_where_the_project_is(project: Path, tmp_path: Path):
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(project, copy)
    assert processing(copy).steps["Prep"].digest() == processing(project).steps["Prep"].digest()
    assert code_inventory(processing(copy).steps["Prep"]) == code_inventory(processing(project).steps["Prep"])


def test_a_script_importing_nothing_of_the_project_keeps_the_digest_it_had(tmp_path: Path):
    """Steps recorded before imports were followed stay reusable: the digest is computed as before."""
    import hashlib
    import json

    write(tmp_path / "plain.py", "import os\nprint(os.getcwd())\n")
    step = Pipeline("plain", steps=[ProcessingStep("Plain", code="plain.py")], base_dir=tmp_path).steps[
        "Plain"
    ]
    hasher = hashlib.sha256(json.dumps(step.definition(), sort_keys=True, default=str).encode())
    hasher.update(b"plain.py")
    hasher.update((tmp_path / "plain.py").read_bytes())
    assert step_digest(step) == "sha256:" + hasher.hexdigest()


def test_a_function_given_by_module_name_counts_its_module_file(project: Path):
    write(project / "steps_module.py", "from lib import io\n\ndef run():\n    return io.load()\n")
    step = FunctionStep("Run", function="steps_module:run")
    Pipeline("fn_code", steps=[step], base_dir=project)
    assert {"steps_module.py", "lib/__init__.py", "lib/io.py"} <= set(code_inventory(step))
    before = step.digest()
    (project / "lib" / "io.py").write_text("def load():\n    return [1]\n")
    assert step.digest() != before


def test_module_lookups_are_remembered_within_one_parse_only(tmp_path: Path) -> None:
    from airflow_provider_mlpipe.fingerprint.code import module_file, remembered_lookups

    with remembered_lookups():
        assert module_file("helpers", [tmp_path]) is None
        (tmp_path / "helpers.py").write_text("X = 1\n")
        # One DAG-file parse: the first answer stands (files do not move within a parse).
        assert module_file("helpers", [tmp_path]) is None
    # The next parse looks again, and so does code outside the loader.
    assert module_file("helpers", [tmp_path]) == tmp_path / "helpers.py"
    with remembered_lookups():
        assert module_file("helpers", [tmp_path]) == tmp_path / "helpers.py"


def test_steps_sharing_code_in_one_parse_get_the_digests_they_get_alone(project: Path) -> None:
    """Within one parse a set of code files is read and walked once for all the steps that share it;
    each step still gets exactly the digest and inventory it gets on its own."""
    from airflow_provider_mlpipe.fingerprint import step_digest_and_code
    from airflow_provider_mlpipe.fingerprint.code import remembered_lookups

    write(
        project / "steps_module.py",
        "from lib import io\n\ndef run():\n    return 1\n\ndef other():\n    return 2\n",
    )
    write(project / "notes.txt", "declared\n")
    steps = [
        FunctionStep("A", function="steps_module:run"),
        FunctionStep("B", function="steps_module:run"),
        FunctionStep("C", function="steps_module:other"),
        FunctionStep("D", function="steps_module:run", code_files=["notes.txt"]),
        ProcessingStep("P1", code="scripts/prep.py"),
        ProcessingStep("P2", code="scripts/prep.py", code_files=["notes.txt"]),
    ]
    Pipeline("shared_code", steps=steps, base_dir=project)
    alone = {step.name: step_digest_and_code(step) for step in steps}
    with remembered_lookups():
        shared = {step.name: step_digest_and_code(step) for step in steps}
    assert shared == alone
    assert "notes.txt" in alone["D"][1] and "notes.txt" not in alone["A"][1]
    assert len({digest for digest, _ in alone.values()}) == len(steps)  # each definition differs
