"""The spec's security options: ``pass_env`` on script steps, ``secret`` on parameters."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model import ProcessingStep, TrainingStep
from airflow_provider_mlpipe.spec import load_pipeline_text

SPEC = """
    name: options
    parameters:
      - {name: ApiKey, type: String, default: "k", secret: true}
      - {name: Depth, type: Integer, default: 3}
    steps:
      - name: Prepare
        type: processing
        code: prepare.py
        env: {KEY: {param: ApiKey}}
        pass_env: [HF_TOKEN, AWS_*]
      - name: Train
        type: training
        code: train.py
        hyperparameters: {depth: {param: Depth}}
        pass_env: [WANDB_API_KEY]
    """


def load(text: str, tmp_path: Path):
    (tmp_path / "prepare.py").write_text("")
    (tmp_path / "train.py").write_text("")
    return load_pipeline_text(textwrap.dedent(text), file="options.pipeline.yaml", base_dir=tmp_path)


def test_pass_env_and_secret_parameters_are_read(tmp_path: Path) -> None:
    pipeline = load(SPEC, tmp_path)
    prepare, train = pipeline.step("Prepare"), pipeline.step("Train")
    assert isinstance(prepare, ProcessingStep) and isinstance(train, TrainingStep)
    assert prepare.pass_env == ["HF_TOKEN", "AWS_*"]
    assert train.pass_env == ["WANDB_API_KEY"]
    assert pipeline.parameters["ApiKey"].secret is True
    assert pipeline.parameters["Depth"].secret is False
    # What a script may see is part of its definition: changing it changes the step's digest.
    changed = load(SPEC.replace("[WANDB_API_KEY]", "[WANDB_API_KEY, HOME2]"), tmp_path)
    assert changed.step("Train").digest() != train.digest()
    assert changed.step("Prepare").digest() == prepare.digest()


def test_a_step_without_pass_env_keeps_the_digest_it_had_before_the_option_existed(tmp_path: Path) -> None:
    step = load(SPEC, tmp_path).step("Train")
    assert "pass_env" in step.definition()
    step.pass_env = []
    assert "pass_env" not in step.definition()


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("[WANDB_API_KEY]", "[WANDB-API-KEY]", "'WANDB-API-KEY' is not a variable name"),
        ("[WANDB_API_KEY]", "WANDB_API_KEY", "expected a list"),
        ("secret: true", "secret: yes", "expected true or false"),
    ],
)
def test_bad_values_are_refused_with_the_step_field_and_line(
    tmp_path: Path, replace: str, by: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as raised:
        load(SPEC.replace(replace, by), tmp_path)
    assert raised.value.line is not None
