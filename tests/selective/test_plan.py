"""The selective-run planner: every rule that selects, reuses or refuses, on the abalone graph."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.selective.plan import (
    CONF_KEY,
    ReferenceRun,
    ReferenceStep,
    SelectiveExecutionConfig,
    StepInfo,
    ancestors,
    choose_reference_run,
    descendants,
    plan_selective_run,
    steps_between,
)

# Preprocess -> Train -> Evaluate -> CheckMse -> (RegisterModel | FailOnMse); Train also feeds RegisterModel.
UPSTREAM = {
    "Preprocess": set(),
    "Train": {"Preprocess"},
    "Evaluate": {"Train", "Preprocess"},
    "CheckMse": {"Evaluate"},
    "RegisterModel": {"CheckMse", "Train", "Evaluate"},
    "FailOnMse": {"CheckMse", "Evaluate"},
}
# The upstream steps whose outputs each step reads (the condition's branch edges carry no data).
DATA = {
    "Train": {"Preprocess"},
    "Evaluate": {"Train", "Preprocess"},
    "CheckMse": {"Evaluate"},
    "RegisterModel": {"Train", "Evaluate"},
    "FailOnMse": set(),
}
KINDS = {"CheckMse": "condition", "RegisterModel": "register_model", "FailOnMse": "fail"}
DEFAULTS = {"MaxDepth": 5, "MseThreshold": 6.0}
# The parameter values each step read in the reference run (Train reads MaxDepth).
READ = {"Train": {"MaxDepth": 5}, "CheckMse": {"MseThreshold": 6.0}}


def steps(**changed_digests: str) -> dict[str, StepInfo]:
    return {
        name: StepInfo(
            name=name,
            kind=KINDS.get(name, "processing"),
            digest=changed_digests.get(name, f"sha256:{name}"),
            upstream=frozenset(upstream),
            if_steps=("RegisterModel",) if name == "CheckMse" else (),
            else_steps=("FailOnMse",) if name == "CheckMse" else (),
            data_upstream=frozenset(DATA.get(name, ())),
        )
        for name, upstream in UPSTREAM.items()
    }


def record(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "mlpipe": 1,
        "step": name,
        "digest": f"sha256:{name}",
        "outputs": {"out": {"uri": f"file:///store/{name}", "digest": f"sha256:data-{name}"}},
        "metadata": metadata,
        "parameters": READ.get(name, {}),
    }


def reference(
    state: str = "success",
    outcome: bool = True,
    conf: dict[str, Any] | None = None,
    run_id: str = "run-1",
    records: dict[str, dict[str, Any]] | None = None,
    **step_states: str,
) -> ReferenceRun:
    states = {name: "success" for name in UPSTREAM}
    states["FailOnMse" if outcome else "RegisterModel"] = "skipped"
    states.update(step_states)
    return ReferenceRun(
        pipeline="abalone",
        run_id=run_id,
        state=state,
        conf={"MaxDepth": 5, "MseThreshold": 6.0} if conf is None else conf,
        steps={
            name: ReferenceStep(
                name,
                step_state,
                (records or {}).get(name)
                or record(name, **({"outcome": outcome} if name == "CheckMse" else {}))
                if step_state == "success"
                else None,
            )
            for name, step_state in states.items()
        },
    )


def plan(
    selected: list[str], ref: ReferenceRun | None = None, *, include_between: bool = False, **kwargs: Any
):
    ref = ref or reference()
    return plan_selective_run(
        "abalone",
        kwargs.pop("definition", None) or steps(),
        SelectiveExecutionConfig(selected, ref.run_id, include_between),
        ref,
        parameter_defaults=kwargs.pop("defaults", DEFAULTS),
        overrides=kwargs.pop("overrides", None),
    )


def test_graph_helpers():
    assert ancestors(UPSTREAM, ["Evaluate"]) == {"Train", "Preprocess"}
    assert descendants(UPSTREAM, ["Evaluate"]) == {"CheckMse", "RegisterModel", "FailOnMse"}
    assert steps_between(UPSTREAM, ["Preprocess", "CheckMse"]) == {"Train", "Evaluate"}
    assert steps_between(UPSTREAM, ["Train", "Evaluate"]) == set()


def test_rerun_train_reuses_preprocess_and_runs_nothing_downstream():
    result = plan(["Train"], overrides={"MaxDepth": 8})

    assert result.selected == ["Train"]
    assert set(result.reused) == {"Preprocess"}
    assert result.reused["Preprocess"]["source_run_id"] == "run-1"
    assert result.reused["Preprocess"]["outputs"] == record("Preprocess")["outputs"]
    assert result.not_run == {
        name: "not selected: downstream of the selected steps"
        for name in ("Evaluate", "CheckMse", "RegisterModel", "FailOnMse")
    }
    assert result.parameters == {"MaxDepth": 8, "MseThreshold": 6.0}
    assert result.conf()[CONF_KEY] == {
        "selected_steps": ["Train"],
        "source_run_id": "run-1",
        "include_between": False,
        "reused_steps": ["Preprocess"],
        "reused_skipped_steps": {},
        "not_run": result.not_run,
    }
    # What Preprocess was computed from, for Train to check on the worker: stored in one XCom of the
    # run, not in its conf (which Airflow decodes again with each task instance row it loads).
    assert result.fingerprints() == {"Preprocess": {"digest": "sha256:Preprocess", "origin_run_id": "run-1"}}
    assert result.conf()["MaxDepth"] == 8
    assert "Train" in result.note() and "run-1" in result.note()


def test_rerun_the_fail_branch_reevaluates_the_condition():
    result = plan(["Train", "Evaluate", "CheckMse", "FailOnMse"], overrides={"MseThreshold": 0.1})

    assert result.selected == ["Train", "Evaluate", "CheckMse", "FailOnMse"]
    assert set(result.reused) == {"Preprocess"}
    assert set(result.not_run) == {"RegisterModel"}


def test_the_selected_order_follows_the_graph_not_the_request():
    assert plan(["Evaluate", "Train"]).selected == ["Train", "Evaluate"]


def test_a_reused_condition_keeps_its_outcome():
    result = plan(["RegisterModel"])
    assert set(result.reused) == {"Preprocess", "Train", "Evaluate", "CheckMse"}
    assert result.reused["CheckMse"]["metadata"] == {"outcome": True}

    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["FailOnMse"])
    assert "FailOnMse" in str(refused.value)
    assert "else branch of CheckMse" in str(refused.value)
    assert "select CheckMse too" in str(refused.value)


def test_the_failed_step_of_a_failed_run_can_be_rerun():
    failed = reference(
        state="failed", Evaluate="failed", CheckMse="upstream_failed", RegisterModel="upstream_failed"
    )
    result = plan(["Evaluate"], failed)
    assert result.selected == ["Evaluate"]
    assert set(result.reused) == {"Preprocess", "Train"}


def test_a_needed_step_that_did_not_succeed_is_refused_with_its_state():
    failed = reference(state="failed", Train="failed", Evaluate="upstream_failed")
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["Evaluate"], failed)
    message = str(refused.value)
    assert "Train (it did not succeed in that run: failed)" in message
    assert "run-1" in message


def test_a_changed_upstream_definition_is_refused_but_a_changed_selected_step_is_fine():
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["Evaluate"], definition=steps(Preprocess="sha256:new"))
    assert "Preprocess (its definition or code changed since that run)" in str(refused.value)

    assert plan(["Train"], definition=steps(Train="sha256:new")).selected == ["Train"]


def test_a_skipped_upstream_step_is_reused_as_skipped():
    result = plan(["RegisterModel"], reference(outcome=True))
    assert "FailOnMse" not in result.reused  # not upstream of RegisterModel
    rejoin_definition = steps()
    rejoin_definition["Report"] = StepInfo(
        "Report", "function", "sha256:Report", frozenset({"RegisterModel", "FailOnMse"})
    )
    with_rejoin = plan(["Report"], definition=rejoin_definition)
    assert with_rejoin.reused_skipped == {"FailOnMse": "run-1"}
    assert "skipped there" in with_rejoin.reused_note("FailOnMse")
    assert with_rejoin.reused_note("Train") == "reused from run run-1"


def test_gaps_between_selected_steps_are_named_or_filled():
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["Preprocess", "CheckMse"])
    assert "Train, Evaluate" in str(refused.value)
    assert "include-between" in str(refused.value)

    filled = plan(["Preprocess", "CheckMse"], include_between=True)
    assert filled.selected == ["Preprocess", "Train", "Evaluate", "CheckMse"]
    assert filled.reused == {}


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        ([], "select at least one step"),
        (["Train", "Trian"], "has no step(s) Trian"),
    ],
)
def test_bad_selections_are_refused(selected: list[str], expected: str):
    with pytest.raises(SelectiveExecutionError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        plan(selected)


def test_unknown_parameter_overrides_are_refused():
    with pytest.raises(SelectiveExecutionError, match="unknown parameter.*MaxDepht.*MaxDepth, MseThreshold"):
        plan(["Train"], overrides={"MaxDepht": 3})


def test_reference_run_checks():
    finished = reference()
    running = ReferenceRun("abalone", "run-2", "running", {}, {})
    other = ReferenceRun("churn", "run-3", "success", {}, {})

    assert choose_reference_run([running, finished], None, "abalone") is finished
    with pytest.raises(SelectiveExecutionError, match="is running"):
        choose_reference_run([running], "run-2", "abalone")
    with pytest.raises(SelectiveExecutionError, match="run of pipeline 'churn', not of 'abalone'"):
        choose_reference_run([other], "run-3", "abalone")
    with pytest.raises(SelectiveExecutionError, match="has no run 'nope'"):
        choose_reference_run([], "nope", "abalone")
    with pytest.raises(SelectiveExecutionError, match="no finished run"):
        choose_reference_run([running], None, "abalone")


def test_config_from_a_trigger_conf_block():
    config = SelectiveExecutionConfig.from_conf({"selected_steps": "Train, Evaluate", "source_run_id": "r"})
    assert config == SelectiveExecutionConfig(["Train", "Evaluate"], "r")
    assert SelectiveExecutionConfig.from_conf(config.to_conf()) == config
    with pytest.raises(SelectiveExecutionError, match="unknown key"):
        SelectiveExecutionConfig.from_conf({"selected_steps": ["Train"], "from": "r"})
    with pytest.raises(SelectiveExecutionError, match="list of step names"):
        SelectiveExecutionConfig.from_conf({"selected_steps": 3})
    with pytest.raises(SelectiveExecutionError, match="must be a mapping"):
        SelectiveExecutionConfig.from_conf(["Train"])


def test_a_reused_step_must_have_read_the_same_parameter_values():
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["Evaluate"], overrides={"MaxDepth": 8})
    assert "Train (it reads parameter(s) that differ: MaxDepth was 5, now 8)" in str(refused.value)

    # Overriding a parameter that only selected steps read is the point of a selective run.
    assert plan(["Train", "Evaluate"], overrides={"MaxDepth": 8}).parameters["MaxDepth"] == 8
    # An override equal to the value used is not a change.
    assert plan(["Evaluate"], overrides={"MaxDepth": 5}).selected == ["Evaluate"]


def test_a_changed_default_counts_as_a_changed_value():
    took_defaults = reference(conf={})  # the reference run gave no values: it took the defaults of then
    with pytest.raises(SelectiveExecutionError, match="MaxDepth was 5, now 7"):
        plan(["Evaluate"], took_defaults, defaults={"MaxDepth": 7, "MseThreshold": 6.0})


# -- only outcomes that were computed are reused ------------------------------------------------


def selective_reference(selected: list[str], source: str = "run-1", **kwargs: Any) -> ReferenceRun:
    """A finished selective run ``run-2`` of ``selected`` that took everything upstream from ``source``,
    as the run creation records it (reused and not-run steps in its conf block)."""
    first = plan(selected, reference(run_id=source))
    records = {name: dict(item) for name, item in first.reused.items()}
    states = {name: "skipped" for name in first.not_run}
    states.update({name: "skipped" for name in first.reused_skipped})
    return reference(run_id="run-2", conf=first.conf(), records=records, **states, **kwargs)


def test_a_step_the_reference_run_did_not_select_is_not_reused_as_skipped():
    only_train = selective_reference(["Train"])
    # Seen: CheckMse was "reused (skipped there)" and RegisterModel registered an unchecked model.
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["RegisterModel"], only_train)
    message = str(refused.value)
    assert "Evaluate (it did not run in that run" in message
    assert "CheckMse (it did not run in that run" in message
    assert "run-2 was a selective run that did not select it" in message

    with pytest.raises(SelectiveExecutionError, match=r"Evaluate \(it did not run in that run"):
        plan(["CheckMse"], only_train)


def test_a_step_the_reference_run_reused_is_followed_to_the_run_where_it_ran():
    only_evaluate = selective_reference(["Evaluate"])
    result = plan(["CheckMse"], only_evaluate)
    assert set(result.reused) == {"Preprocess", "Train", "Evaluate"}
    assert result.reused["Train"]["source_run_id"] == "run-2"
    assert result.reused["Train"]["origin_run_id"] == "run-1"
    assert result.reused["Evaluate"]["origin_run_id"] == "run-2"
    assert result.reused_note("Train") == "reused from run run-2 (computed in run run-1)"
    assert result.reused_note("Evaluate") == "reused from run run-2"


def test_a_skip_reused_from_an_earlier_run_keeps_where_it_happened():
    rejoin_definition = steps()
    rejoin_definition["Report"] = StepInfo(
        "Report", "function", "sha256:Report", frozenset({"RegisterModel", "FailOnMse"})
    )
    first = plan(["Report"], reference(run_id="run-1"), definition=rejoin_definition)
    assert first.reused_skipped == {"FailOnMse": "run-1"}
    second_run = reference(
        run_id="run-2",
        conf=first.conf(),
        records={name: dict(item) for name, item in first.reused.items()},
        FailOnMse="skipped",
    )
    second = plan(["Report"], second_run, definition=rejoin_definition)
    assert second.reused_skipped == {"FailOnMse": "run-1"}
    assert second.reused_note("FailOnMse") == (
        "reused from run run-2 (skipped in run run-1: its branch was not taken)"
    )


def test_a_selective_run_recorded_before_skips_were_traced_is_not_trusted_for_skips():
    definition = steps()
    definition["Report"] = StepInfo(
        "Report", "function", "sha256:Report", frozenset({"RegisterModel", "FailOnMse"})
    )
    reused = ["CheckMse", "Evaluate", "Preprocess", "RegisterModel", "Train"]
    old_style = reference(
        run_id="run-2",
        conf={CONF_KEY: {"selected_steps": ["Report"], "source_run_id": "run-1", "reused_steps": reused}},
        FailOnMse="skipped",
    )
    old_style.steps["Report"] = ReferenceStep("Report", "success", record("Report"))
    # Its FailOnMse was "reused (skipped there)", but from where is not recorded: not trusted.
    with pytest.raises(SelectiveExecutionError, match=r"FailOnMse \(it did not run in that run"):
        plan(["Report"], old_style, definition=definition)
    assert plan(["Evaluate"], old_style, definition=definition).selected == ["Evaluate"]


def test_a_selected_step_that_would_only_be_skipped_is_refused():
    # Reads the output of a step a branch skipped in the reference run: it could never run.
    definition = steps()
    definition["Publish"] = StepInfo(
        "Publish",
        "function",
        "sha256:Publish",
        frozenset({"RegisterModel"}),
        data_upstream=frozenset({"RegisterModel"}),
    )
    with pytest.raises(SelectiveExecutionError) as refused:
        plan(["Publish"], reference(outcome=False), definition=definition)
    message = str(refused.value)
    assert "selected step(s) would be skipped, not run: Publish (it reads outputs of RegisterModel" in message
    assert "select the condition step that skipped them too" in message
    # With the condition selected, its outcome is computed again: nothing is certain to be skipped.
    assert plan(["CheckMse", "RegisterModel", "Publish"], reference(outcome=False), definition=definition)


def test_a_rejoin_step_after_a_skipped_branch_runs():
    definition = steps()
    definition["Report"] = StepInfo(
        "Report",
        "function",
        "sha256:Report",
        frozenset({"RegisterModel", "FailOnMse"}),
        data_upstream=frozenset({"RegisterModel"}),
    )
    result = plan(["Report"], reference(outcome=True), definition=definition)
    assert result.selected == ["Report"]
    assert result.reused_skipped == {"FailOnMse": "run-1"}


def test_a_step_in_a_branch_of_a_condition_that_never_ran_is_refused():
    # CheckMse itself sits in a branch that was not taken: it was skipped, never evaluated.
    definition = steps()
    gate = StepInfo("Gate", "condition", "sha256:Gate", frozenset({"Evaluate"}), ("CheckMse",), ())
    definition["Gate"] = gate
    definition["CheckMse"] = StepInfo(
        "CheckMse",
        "condition",
        "sha256:CheckMse",
        frozenset({"Evaluate", "Gate"}),
        ("RegisterModel",),
        ("FailOnMse",),
        data_upstream=frozenset({"Evaluate"}),
    )
    ref = reference(CheckMse="skipped", RegisterModel="skipped", FailOnMse="skipped")
    ref.steps["Gate"] = ReferenceStep("Gate", "success", record("Gate", outcome=False))
    with pytest.raises(SelectiveExecutionError, match="never evaluated in run 'run-1'"):
        plan(["FailOnMse"], ref, definition=definition)
