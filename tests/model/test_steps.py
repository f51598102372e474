"""Steps: names, outputs, inputs and references of each kind, construction checks, retry policy, digests."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.conditions import ConditionGreaterThan, ConditionLessThanOrEqualTo
from airflow_provider_mlpipe.model.expressions import Join, JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import ParameterFloat, ParameterInteger, ParameterString
from airflow_provider_mlpipe.model.steps import (
    STEP_KINDS,
    ConditionStep,
    FailStep,
    FunctionStep,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    RetryPolicy,
    Step,
    TrainingStep,
)

DEPTH = ParameterInteger("MaxDepth", default_value=5)
THRESHOLD = ParameterFloat("MseThreshold", default_value=6.0)


def train_model(hyperparameters: dict, channels: dict, model_dir: Path) -> dict:
    """A module-level callable for FunctionStep/TrainingStep tests."""
    return {"mse": 1.0}


def field_refs(step: Step) -> list[tuple[str, Any]]:
    """The step's references as (field, canonical reference), easy to compare."""
    return [(field, reference.to_dict()) for field, reference in step.references()]


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train", "Train-1", "a.b_c", "0step", "x", "a" * 200, "a..b"])
def test_valid_step_names(name: str) -> None:
    assert FailStep(name).name == name


@pytest.mark.parametrize(
    "name",
    ["", "../x", "..", ".hidden", "a/b", "/abs", "a\\b", "-x", "_x", "a b", "a" * 201, "ü", "a:b"],
)
def test_invalid_step_names_are_refused(name: str) -> None:
    with pytest.raises(SpecError) as raised:
        FailStep(name)

    assert raised.value.field == "name"
    assert raised.value.step == name
    assert f"invalid step name {name!r}" in str(raised.value)


@pytest.mark.parametrize("name", [None, 5])
def test_non_string_step_names_are_refused(name: Any) -> None:
    with pytest.raises(SpecError, match="invalid step name"):
        FailStep(name)


def test_step_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(SpecError):
        FailStep("train\n")


# -- the base step -------------------------------------------------------------------------------


def test_output_returns_a_step_output_reference() -> None:
    prep = FunctionStep("prep", function=train_model, outputs=["train", "test"])

    reference = prep.output("train")

    assert isinstance(reference, StepOutput)
    assert reference.to_dict() == {"step": "prep", "output": "train"}


def test_depends_on_accepts_steps_and_names_and_keeps_step_objects_as_related() -> None:
    first = FailStep("first")
    step = FailStep("second", depends_on=[first, "other"])

    assert step.depends_on == ["first", "other"]
    assert list(step.related_steps()) == [first]


def test_resolve_path_is_relative_to_base_dir(tmp_path: Path) -> None:
    step = ProcessingStep("prep", code="scripts/prep.py")

    assert step.resolve_path("scripts/prep.py") == Path("scripts/prep.py")
    step.base_dir = tmp_path
    assert step.code_files() == [tmp_path / "scripts" / "prep.py"]
    assert step.resolve_path(str(tmp_path / "abs.py")) == tmp_path / "abs.py"


# -- FunctionStep --------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [train_model, len, "package.module:function", "helpers.py:fn"])
def test_function_step_accepts_a_callable_or_module_attribute(function: Any) -> None:
    assert FunctionStep("fn", function=function).function is function


@pytest.mark.parametrize("function", ["package.module", "", 42, None])
def test_function_step_refuses_other_functions(function: Any) -> None:
    with pytest.raises(SpecError) as raised:
        FunctionStep("fn", function=function)

    assert (raised.value.step, raised.value.field) == ("fn", "function")
    assert "function must be a callable or 'module:attribute'" in str(raised.value)


def test_function_step_outputs_inputs_and_references() -> None:
    rows = StepOutput("prep", "rows")
    step = FunctionStep(
        "fn",
        function=train_model,
        arguments={"depth": DEPTH * 2, "data": [rows, {"n": 1}], "label": "rings"},
        outputs=["model", "report"],
    )

    assert step.output_names() == ["model", "report"]
    assert FunctionStep("other", function=train_model).output_names() == ["result"]
    assert [field for field, _ in step.inputs()] == ["arguments.depth", "arguments.data", "arguments.label"]
    assert field_refs(step) == [
        ("arguments.depth", {"param": "MaxDepth"}),
        ("arguments.data", {"step": "prep", "output": "rows"}),
    ]
    assert step.code_files() == []


# -- ProcessingStep ----------------------------------------------------------------------------


def processing_step(**overrides: Any) -> ProcessingStep:
    arguments: dict[str, Any] = {
        "code": "preprocess.py",
        "inputs": [
            ProcessingInput("raw", ParameterString("InputData")),
            ProcessingInput("extra", "data/x.csv"),
        ],
        "outputs": [ProcessingOutput("train"), ProcessingOutput("test")],
        "job_arguments": ["--depth", DEPTH, "--rows", StepOutput("fetch", "rows")],
        "env": {"MODE": "fast", "RATE": THRESHOLD},
        "property_files": [PropertyFile("stats", "train", "stats.json")],
    }
    arguments.update(overrides)
    return ProcessingStep("prep", **arguments)


def test_processing_step_outputs_inputs_and_references() -> None:
    step = processing_step()

    assert step.kind == "processing"
    assert step.output_names() == ["train", "test"]
    assert [field for field, _ in step.inputs()] == [
        "inputs.raw",
        "inputs.extra",
        "job_arguments[0]",
        "job_arguments[1]",
        "job_arguments[2]",
        "job_arguments[3]",
        "env.MODE",
        "env.RATE",
    ]
    assert field_refs(step) == [
        ("inputs.raw", {"param": "InputData"}),
        ("job_arguments[1]", {"param": "MaxDepth"}),
        ("job_arguments[3]", {"step": "fetch", "output": "rows"}),
        ("env.RATE", {"param": "MseThreshold"}),
    ]
    assert step.property_files() == [PropertyFile("stats", "train", "stats.json")]
    assert step.code_files() == [Path("preprocess.py")]


# -- TrainingStep --------------------------------------------------------------------------------


def test_training_step_outputs_inputs_and_references() -> None:
    step = TrainingStep(
        "train",
        code="train.py",
        hyperparameters={"max_depth": DEPTH, "eta": 0.2},
        inputs={"train": StepOutput("prep", "train")},
        env={"SEED": ParameterInteger("Seed")},
    )

    assert step.output_names() == ["model", "metrics"]
    assert [field for field, _ in step.inputs()] == [
        "hyperparameters.max_depth",
        "hyperparameters.eta",
        "inputs.train",
        "env.SEED",
    ]
    assert field_refs(step) == [
        ("hyperparameters.max_depth", {"param": "MaxDepth"}),
        ("inputs.train", {"step": "prep", "output": "train"}),
        ("env.SEED", {"param": "Seed"}),
    ]
    assert step.code_files() == [Path("train.py")]


def test_training_step_with_a_function_has_no_code_file() -> None:
    step = TrainingStep("train", function=train_model)

    assert step.code_files() == []
    assert step.definition()["function"] == "train_model"  # content only: no module name


@pytest.mark.parametrize(
    "arguments",
    [{}, {"code": "train.py", "function": train_model}, {"code": None, "function": None}],
    ids=["neither", "both", "both-none"],
)
def test_training_step_needs_exactly_one_of_code_and_function(arguments: dict[str, Any]) -> None:
    with pytest.raises(SpecError) as raised:
        TrainingStep("train", **arguments)

    assert (raised.value.step, raised.value.field) == ("train", "code")
    assert "give exactly one of 'code' and 'function'" in str(raised.value)


def test_training_step_refuses_an_empty_code_path() -> None:
    with pytest.raises(SpecError):
        TrainingStep("train", code="")


@pytest.mark.parametrize("function", [42, "train"])
def test_training_step_refuses_an_invalid_function(function: Any) -> None:
    with pytest.raises(SpecError):
        TrainingStep("train", function=function)


# -- ConditionStep -------------------------------------------------------------------------------


def test_condition_step_outputs_inputs_references_and_branches() -> None:
    register = FailStep("register")
    fail = FailStep("fail")
    mse = JsonGet("evaluate", "metrics", "regression_metrics.mse.value")
    step = ConditionStep(
        "check",
        conditions=[ConditionLessThanOrEqualTo(mse, THRESHOLD), ConditionGreaterThan(DEPTH, 1)],
        if_steps=[register, "named"],
        else_steps=[fail],
        depends_on=[FailStep("before")],
    )

    assert step.output_names() == ["outcome"]
    assert [field for field, _ in step.inputs()] == ["conditions[0]", "conditions[1]"]
    assert field_refs(step) == [
        ("conditions[0]", mse.to_dict()),
        ("conditions[0]", {"param": "MseThreshold"}),
        ("conditions[1]", {"param": "MaxDepth"}),
    ]
    assert step.if_steps == ["register", "named"]
    assert step.else_steps == ["fail"]
    assert [related.name for related in step.related_steps()] == ["before", "register", "fail"]


def test_condition_step_needs_a_condition() -> None:
    with pytest.raises(SpecError) as raised:
        ConditionStep("check", conditions=[])

    assert (raised.value.step, raised.value.field) == ("check", "conditions")
    assert "needs at least one condition" in str(raised.value)


@pytest.mark.parametrize("condition", [True, DEPTH, "a > b", {"eq": [1, 1]}])
def test_condition_step_refuses_what_is_not_a_condition(condition: Any) -> None:
    with pytest.raises(SpecError) as raised:
        ConditionStep("check", conditions=[condition])

    assert raised.value.field == "conditions"
    assert f"expected a condition, got {condition!r}" in str(raised.value)


# -- FailStep and RegisterModel ------------------------------------------------------------------


def test_fail_step_has_no_outputs_and_reads_its_message() -> None:
    step = FailStep("fail", error_message=Join(on=" ", values=["mse", ParameterFloat("Mse"), "too high"]))

    assert step.output_names() == []
    assert field_refs(step) == [("error_message", {"param": "Mse"})]
    assert FailStep("plain").error_message == ""


def test_register_model_outputs_and_references() -> None:
    metrics = JsonGet("evaluate", "metrics", "regression_metrics")
    step = RegisterModel(
        "register",
        model_data=StepOutput("train", "model"),
        model_package_group_name=ParameterString("Group"),
        model_metrics=metrics,
        metadata={"depth": DEPTH, "team": "ml"},
        description="abalone model",
    )

    assert step.output_names() == ["model_package"]
    assert step.approval_status == "PendingManualApproval"
    assert step.description == "abalone model"
    assert [field for field, _ in step.inputs()] == [
        "model_data",
        "model_package_group_name",
        "approval_status",
        "model_metrics",
        "metadata.depth",
        "metadata.team",
    ]
    assert field_refs(step) == [
        ("model_data", {"step": "train", "output": "model"}),
        ("model_package_group_name", {"param": "Group"}),
        ("model_metrics", metrics.to_dict()),
        ("metadata.depth", {"param": "MaxDepth"}),
    ]


@pytest.mark.parametrize(
    "status", ["PendingManualApproval", "Approved", "Rejected", ParameterString("Status")]
)
def test_register_model_accepts_known_statuses_and_expressions(status: Any) -> None:
    step = RegisterModel(
        "register", model_data="model.tar.gz", model_package_group_name="g", approval_status=status
    )

    assert step.approval_status is status


@pytest.mark.parametrize("status", ["approved", "Pending", ""])
def test_register_model_refuses_unknown_statuses(status: str) -> None:
    with pytest.raises(SpecError) as raised:
        RegisterModel("register", model_data="m", model_package_group_name="g", approval_status=status)

    assert (raised.value.step, raised.value.field) == ("register", "approval_status")
    assert f"approval_status must be one of PendingManualApproval, Approved, Rejected, got {status!r}" in str(
        raised.value
    )


def test_step_kinds_registry() -> None:
    from airflow_provider_mlpipe.model import LoopStep, TransformStep, TuningStep

    registered = dict(STEP_KINDS)

    assert registered == {
        "function": FunctionStep,
        "processing": ProcessingStep,
        "training": TrainingStep,
        "condition": ConditionStep,
        "fail": FailStep,
        "register_model": RegisterModel,
        "loop": LoopStep,
        "tuning": TuningStep,
        "transform": TransformStep,
    }


# -- RetryPolicy -------------------------------------------------------------------------------


def test_retry_policy_defaults_and_to_dict() -> None:
    policy = RetryPolicy(max_attempts=3, interval_seconds=0, backoff_rate=1.0, max_interval_seconds=60)

    assert RetryPolicy().to_dict() == {
        "max_attempts": 1,
        "interval_seconds": 1.0,
        "backoff_rate": 2.0,
        "max_interval_seconds": None,
    }
    assert policy.to_dict() == {
        "max_attempts": 3,
        "interval_seconds": 0,
        "backoff_rate": 1.0,
        "max_interval_seconds": 60,
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1, got 0"),
        ({"max_attempts": -1}, "max_attempts must be an integer >= 1, got -1"),
        ({"max_attempts": True}, "max_attempts must be an integer >= 1, got True"),
        ({"max_attempts": 2.0}, "max_attempts must be an integer >= 1, got 2.0"),
        ({"max_attempts": "3"}, "max_attempts must be an integer >= 1, got '3'"),
        ({"interval_seconds": -0.5}, "interval_seconds must be >= 0"),
        ({"backoff_rate": 0.5}, "backoff_rate must be >= 1"),
        ({"interval_seconds": "5"}, "interval_seconds must be a number of seconds, got '5'"),
        (
            {"interval_seconds": 10, "max_interval_seconds": 5},
            "max_interval_seconds must be >= interval_seconds",
        ),
        # What Airflow could not store: a 32-bit retries column, finite timedeltas.
        ({"max_attempts": 2**31}, "max_attempts must be at most 2147483647"),
        ({"max_attempts": 2**70}, "max_attempts must be at most 2147483647"),
        ({"interval_seconds": float("inf")}, "interval_seconds must be a finite number"),
        ({"interval_seconds": float("nan")}, "interval_seconds must be a finite number"),
        ({"interval_seconds": 1e300}, "interval_seconds must be a finite number no larger than"),
        ({"backoff_rate": float("inf")}, "backoff_rate must be a finite number"),
        ({"max_interval_seconds": float("inf")}, "max_interval_seconds must be a finite number"),
    ],
)
def test_retry_policy_refuses_invalid_values(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as raised:
        RetryPolicy(**arguments)

    assert raised.value.field.split(".")[0] == "retry"
    assert message in str(raised.value)


def test_retry_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        RetryPolicy().max_attempts = 5  # type: ignore[misc]


# -- definition and digest -----------------------------------------------------------------------


def function_step(**overrides: Any) -> FunctionStep:
    arguments: dict[str, Any] = {
        "function": train_model,
        "arguments": {"depth": DEPTH, "rate": 0.1},
        "outputs": ["result"],
    }
    arguments.update(overrides)
    return FunctionStep("fn", **arguments)


def training_step(**overrides: Any) -> TrainingStep:
    arguments: dict[str, Any] = {
        "code": "train.py",
        "hyperparameters": {"max_depth": DEPTH, "eta": 0.2},
        "inputs": {"train": StepOutput("prep", "train")},
    }
    arguments.update(overrides)
    return TrainingStep("train", **arguments)


def test_digest_format() -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", function_step().digest())


def test_definition_of_a_function_step() -> None:
    definition = function_step(retry_policy=RetryPolicy(max_attempts=2), depends_on=["b", "a"]).definition()

    source_digest = definition.pop("function_source")
    assert re.fullmatch(r"[0-9a-f]{64}", source_digest)
    assert definition == {
        "kind": "function",
        "name": "fn",
        "depends_on": ["a", "b"],
        "retry_policy": {
            "max_attempts": 2,
            "interval_seconds": 1.0,
            "backoff_rate": 2.0,
            "max_interval_seconds": None,
        },
        "function": "train_model",
        "arguments": {"depth": {"param": "MaxDepth"}, "rate": 0.1},
        "outputs": ["result"],
        "allow_pickle": False,
    }


def test_digest_is_stable_for_the_same_definition() -> None:
    assert function_step().digest() == function_step().digest()
    assert training_step().digest() == training_step().digest()
    step = processing_step()
    assert step.digest() == step.digest()


@pytest.mark.parametrize(
    ("build", "changed"),
    [
        (function_step, lambda: function_step(arguments={"depth": DEPTH, "rate": 0.2})),
        (function_step, lambda: function_step(arguments={"depth": DEPTH * 2, "rate": 0.1})),
        (function_step, lambda: function_step(arguments={"depth": ParameterInteger("Other"), "rate": 0.1})),
        (function_step, lambda: function_step(outputs=["model"])),
        (function_step, lambda: function_step(allow_pickle=True)),
        (function_step, lambda: function_step(function="package.module:train_model")),
        (function_step, lambda: function_step(retry_policy=RetryPolicy(max_attempts=3))),
        (function_step, lambda: function_step(depends_on=["prep"])),
        (training_step, lambda: training_step(hyperparameters={"max_depth": DEPTH, "eta": 0.3})),
        (training_step, lambda: training_step(hyperparameters={"max_depth": DEPTH})),
        (training_step, lambda: training_step(inputs={"train": StepOutput("prep", "test")})),
        (training_step, lambda: training_step(code="train2.py")),
        (training_step, lambda: training_step(env={"SEED": "1"})),
        (training_step, lambda: training_step(command=["python3"])),
        (processing_step, lambda: processing_step(job_arguments=["--depth", DEPTH * 2])),
        (processing_step, lambda: processing_step(outputs=[ProcessingOutput("train")])),
        (processing_step, lambda: processing_step(property_files=[])),
    ],
    ids=[
        "argument-value",
        "argument-expression",
        "argument-parameter",
        "outputs",
        "allow_pickle",
        "function-name",
        "retry-policy",
        "depends_on",
        "hyperparameter-value",
        "hyperparameter-removed",
        "channel",
        "code-path",
        "env",
        "command",
        "job-argument",
        "processing-outputs",
        "property-files",
    ],
)
def test_digest_changes_with_the_definition(build: Callable[[], Step], changed: Callable[[], Step]) -> None:
    assert build().digest() != changed().digest()


def test_digest_changes_with_the_conditions_and_branches() -> None:
    def condition_step(threshold: float, if_steps: list[str]) -> ConditionStep:
        return ConditionStep("check", conditions=[ConditionGreaterThan(DEPTH, threshold)], if_steps=if_steps)

    digest = condition_step(1, ["a"]).digest()

    assert condition_step(1, ["a"]).digest() == digest
    assert condition_step(2, ["a"]).digest() != digest
    assert condition_step(1, ["b"]).digest() != digest


def test_digest_ignores_display_name_description_and_depends_on_order() -> None:
    digest = function_step(depends_on=["a", "b"]).digest()

    assert function_step(depends_on=["b", "a"]).digest() == digest
    assert function_step(depends_on=["a", "b"], display_name="Fancy label").digest() == digest
    assert function_step(depends_on=["a", "b"], description="Some documentation").digest() == digest
    assert "display_name" not in function_step().definition()
    assert "description" not in function_step().definition()


def test_digest_changes_with_the_script_content(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('v1')\n")
    step = training_step()
    step.base_dir = tmp_path
    first = step.digest()

    assert step.digest() == first
    script.write_text("print('v2')\n")
    assert step.digest() != first


def test_digest_depends_on_script_content_not_on_its_folder(tmp_path: Path) -> None:
    digests = []
    for folder in ("checkout-a", "checkout-b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text("print('same')\n")
        step = training_step()
        step.base_dir = tmp_path / folder
        digests.append(step.digest())

    assert digests[0] == digests[1]


def test_digest_of_a_missing_script_differs_from_an_existing_one(tmp_path: Path) -> None:
    step = training_step()
    step.base_dir = tmp_path
    missing = step.digest()

    (tmp_path / "train.py").write_text("")

    assert step.digest() != missing


def _load_function(path: Path, source: str) -> Callable[..., Any]:
    """Load ``source`` from ``path`` always as module ``mlpipe_digest_fixture``, return its ``train``."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mlpipe_digest_fixture", path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train


@pytest.mark.parametrize("step_class", [FunctionStep, TrainingStep])
def test_digest_changes_with_the_callable_source(tmp_path: Path, step_class: type[Step]) -> None:
    v1 = _load_function(tmp_path / "v1.py", "def train(**kwargs):\n    return 1\n")
    v1_copy = _load_function(tmp_path / "v1_copy.py", "def train(**kwargs):\n    return 1\n")
    v2 = _load_function(tmp_path / "v2.py", "def train(**kwargs):\n    return 2\n")
    assert f"{v1.__module__}:{v1.__qualname__}" == f"{v2.__module__}:{v2.__qualname__}"

    def digest(function: Callable[..., Any]) -> str:
        return step_class("fn", function=function).digest()  # type: ignore[call-arg]

    assert digest(v1) == digest(v1_copy)
    assert digest(v1) != digest(v2)


PIPELINE_FILE = """\
from airflow_provider_mlpipe.model import FunctionStep, Pipeline


def double(value):
    return value * 2


pipeline = Pipeline("same", steps=[FunctionStep("Double", function=double, arguments={"value": 2})])
"""


@pytest.mark.parametrize("step_class", [FunctionStep, TrainingStep])
def test_digest_depends_on_the_callable_content_not_on_how_its_file_was_imported(
    tmp_path: Path, step_class: type[Step]
) -> None:
    # Seen: a pipeline started from a Python file, then re-run from a copy of the dags folder (or
    # by the CLI, which imports the file under another module name), was refused as "changed".
    digests = set()
    for folder, module_name in (
        ("dags", "abalone_python"),
        ("copy", "unusual_prefix_1234_abalone"),
        ("x", "m"),
    ):
        path = tmp_path / folder / "pipeline_file.py"
        path.parent.mkdir()
        path.write_text(PIPELINE_FILE)
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        digests.add(step_class("fn", function=module.double).digest())  # type: ignore[call-arg]
    assert len(digests) == 1


def test_a_pipeline_file_loaded_from_two_folders_has_the_same_step_digests(tmp_path: Path) -> None:
    from airflow_provider_mlpipe.discovery import load_pipelines_from_python

    digests = []
    for folder in ("dags", "dags_copy"):
        path = tmp_path / folder / "pipeline_file.py"
        path.parent.mkdir()
        path.write_text(PIPELINE_FILE)
        (pipeline,) = load_pipelines_from_python(path)
        digests.append(pipeline.step_digests())
    assert digests[0] == digests[1]


def test_digest_changes_with_the_content_of_a_function_file(tmp_path: Path) -> None:
    helpers = tmp_path / "helpers.py"
    step = FunctionStep("fn", function="helpers.py:train")
    step.base_dir = tmp_path
    helpers.write_text("def train():\n    return 1\n")
    first = step.digest()

    helpers.write_text("def train():\n    return 2222\n")

    assert step.digest() != first


def test_digest_of_a_set_argument_is_the_same_in_every_process() -> None:
    code = (
        "from airflow_provider_mlpipe.model.steps import FunctionStep\n"
        "step = FunctionStep('fn', function='m:f', arguments={'columns': {'alpha', 'beta', 'gamma', 'delta', 'eps'}})\n"
        "print(step.digest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            cwd=Path(__file__).parents[2],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }

    assert len(digests) == 1
