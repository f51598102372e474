"""What a step's script sees and what its logs keep, run for real through Airflow in process: the
worker's secrets stay out of the script's environment unless the step asks for them, secret values stay
out of the task log and the failure reason, and inputs given through parameters stay under the input
roots."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.client.local import LocalSession
from airflow_provider_mlpipe.exceptions import InputNotAllowedError
from airflow_provider_mlpipe.model import (
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    TrainingStep,
)
from airflow_provider_mlpipe.operators.input_roots import checked_location

pytestmark = pytest.mark.usefixtures("airflow_home")

# Secrets a worker's environment holds; names as Airflow and AWS use them.
WORKER_SECRETS = {
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://etl:conn-pw-8841@db.internal/warehouse",
    "AIRFLOW__MLPIPE__TEST_SECRET": "airflow-setting-5521",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-7730",
    "MLPIPE_API_PASSWORD": "client-pw-9912",
    "DATABASE_URL": "postgres://app:db-pw-4417@db/app",
}
DUMP_ENV = """
    import json, os, sys
    from pathlib import Path
    Path(os.environ["MLPIPE_OUTPUT_ENV"], "env.json").write_text(json.dumps(dict(os.environ)))
    print("token seen by the script:", os.environ.get("HF_TOKEN"))
    print("arguments:", " ".join(sys.argv[1:]))
    """


def task_log(execution, step: str) -> str:
    from airflow.configuration import conf

    base = Path(conf.get("logging", "base_log_folder"))
    path = base / f"dag_id={execution.pipeline_name}" / f"run_id={execution.execution_id}"
    return (path / f"task_id={step}" / "attempt=1.log").read_text()


def step_output_dir(execution, step: str, output: str) -> Path:
    return Path(execution.step_outputs(step)[output])


def test_a_script_sees_a_scrubbed_environment_and_what_its_step_asks_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**WORKER_SECRETS, "HF_TOKEN": "hf-token-6603", "AWS_REGION": "eu-west-3"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dump_env.py").write_text(textwrap.dedent(DUMP_ENV))
    step = ProcessingStep(
        "Dump",
        code="dump_env.py",
        outputs=[ProcessingOutput("env")],
        env={"MODE": "fast"},
        pass_env=["HF_TOKEN", "AWS_REG*"],
    )
    execution = Pipeline("script_env", [], [step], base_dir=tmp_path).start(session=LocalSession())
    assert execution.describe().status == "success"

    seen = json.loads((step_output_dir(execution, "Dump", "env") / "env.json").read_text())
    for name in WORKER_SECRETS:
        assert name not in seen, f"the script saw {name}"
    assert not [name for name in seen if name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AWS_SECRET"))]
    assert seen["PATH"] == os.environ["PATH"] and seen["HOME"] == os.environ["HOME"]
    assert seen["MODE"] == "fast" and seen["MLPIPE_OUTPUT_ENV"].endswith("env")
    assert seen["HF_TOKEN"] == "hf-token-6603" and seen["AWS_REGION"] == "eu-west-3"  # asked for
    assert seen["AIRFLOW_CTX_DAG_ID"] == "script_env"  # the task context is no secret

    # The script printed the token it was given: the task log shows *** in its place.
    log = task_log(execution, "Dump")
    assert "token seen by the script: ***" in log
    assert "hf-token-6603" not in log
    assert not any(value in log for value in WORKER_SECRETS.values())


def test_hyperparameters_are_logged_and_secret_parameters_are_not(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(
        textwrap.dedent(
            """
            import os, sys
            from pathlib import Path
            print("training with", " ".join(sys.argv[1:]), "key", os.environ["API_KEY"])
            Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("m")
            sys.exit(int(os.environ["EXIT_CODE"]))
            """
        )
    )
    api_key = ParameterString("ApiKey", default_value="sk-live-31337abc", secret=True)
    exit_code = ParameterString("ExitCode", default_value="0")
    train = TrainingStep(
        "Train",
        code="train.py",
        hyperparameters={"max_depth": 7, "key": api_key},
        env={"API_KEY": api_key, "EXIT_CODE": exit_code},
    )
    pipeline = Pipeline("secret_params", [api_key, exit_code], [train], base_dir=tmp_path)

    ran = pipeline.start(session=LocalSession())
    assert ran.describe().status == "success"
    log = task_log(ran, "Train")
    assert "--max_depth 7" in log, "hyperparameters are logged"
    assert "--key ***" in log and "key ***" in log
    assert "sk-live-31337abc" not in log

    failed = pipeline.start(parameters={"ExitCode": "4"}, session=LocalSession())
    assert failed.describe().status == "failed"
    reason = failed.list_steps()[0].failure_reason
    assert "exited with code 4" in reason and "--max_depth 7" in reason
    assert "sk-live-31337abc" not in reason, "the failure reason (XCom, note) keeps no secret either"
    assert "sk-live-31337abc" not in task_log(failed, "Train")


def input_pipeline(tmp_path: Path) -> Pipeline:
    (tmp_path / "count.py").write_text(
        textwrap.dedent(
            """
            import os
            from pathlib import Path
            names = sorted(p.name for p in Path(os.environ["MLPIPE_INPUT_RAW"]).iterdir())
            Path(os.environ["MLPIPE_OUTPUT_OUT"], "names.txt").write_text(",".join(names))
            """
        )
    )
    data_path = ParameterString("DataPath", default_value="data/ok.csv")
    step = ProcessingStep(
        "Count",
        code="count.py",
        inputs=[ProcessingInput("raw", data_path)],
        outputs=[ProcessingOutput("out")],
    )
    return Pipeline("input_roots", [data_path], [step], base_dir=tmp_path)


@pytest.mark.parametrize(
    ("given", "resolved"),
    [("/etc/passwd", "/etc/passwd"), ("data/../../outside.csv", "outside.csv"), ("data/link", "/etc")],
)
def test_an_input_given_through_a_parameter_must_lie_under_the_input_roots(
    tmp_path: Path, given: str, resolved: str
) -> None:
    spec_folder = tmp_path / "spec"
    (spec_folder / "data").mkdir(parents=True)
    (spec_folder / "data" / "ok.csv").write_text("1,2\n")
    (spec_folder / "data" / "link").symlink_to("/etc")
    (tmp_path / "outside.csv").write_text("private\n")
    pipeline = input_pipeline(spec_folder)

    execution = pipeline.start(parameters={"DataPath": given}, session=LocalSession())
    assert execution.describe().status == "failed"
    reason = execution.list_steps()[0].failure_reason
    assert f"step 'Count', input 'raw': {given!r}" in reason
    assert resolved in reason and "is outside the default roots" in reason
    assert str(spec_folder) in reason, "the message names the roots"

    # The default, inside the spec's folder, is read.
    fine = pipeline.start(session=LocalSession())
    assert fine.describe().status == "success"
    assert (step_output_dir(fine, "Count", "out") / "names.txt").read_text() == "ok.csv"


def test_configured_input_roots_replace_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "big.csv").write_text("3,4\n")
    spec_folder = tmp_path / "spec"
    (spec_folder / "data").mkdir(parents=True)
    (spec_folder / "data" / "ok.csv").write_text("1,2\n")
    monkeypatch.setenv("AIRFLOW__MLPIPE__INPUT_ROOTS", f"{shared}, s3://bucket/datasets")
    pipeline = input_pipeline(spec_folder)

    allowed = pipeline.start(parameters={"DataPath": str(shared / "big.csv")}, session=LocalSession())
    assert allowed.describe().status == "success"
    refused = pipeline.start(session=LocalSession())  # the spec's folder is no root any more
    assert refused.describe().status == "failed"
    assert "outside [mlpipe] input_roots" in refused.list_steps()[0].failure_reason


def test_a_literal_input_in_the_spec_is_the_authors_choice(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.csv").write_text("5\n")
    spec_folder = tmp_path / "spec"
    spec_folder.mkdir()
    pipeline = input_pipeline(spec_folder)
    step = pipeline.step("Count")
    assert isinstance(step, ProcessingStep)
    step.processing_inputs[0] = ProcessingInput("raw", str(outside / "x.csv"))
    execution = pipeline.start(session=LocalSession())
    assert execution.describe().status == "success"


def test_s3_inputs_must_lie_under_an_s3_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MLPIPE__INPUT_ROOTS", "s3://bucket/datasets")

    def check(location: str) -> str:
        return checked_location(location, step="Count", input_name="raw", base_dir=None)

    assert check("s3://bucket/datasets/abalone.csv") == "s3://bucket/datasets/abalone.csv"
    assert check("s3://bucket/datasets") == "s3://bucket/datasets"
    for refused in (
        "s3://bucket/datasets-private/x.csv",
        "s3://bucket/datasets/../secrets/x",
        "s3://other/datasets/x.csv",
        "/tmp/x.csv",
    ):
        with pytest.raises(InputNotAllowedError, match="step 'Count', input 'raw'"):
            check(refused)
