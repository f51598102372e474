"""Plan a selective run: which steps run, which reuse a reference run's outputs, which do not run.

Pure Python, no Airflow: the planner works on :class:`StepInfo` (read from the pipeline model, or from
the serialized DAG in the api-server and the scheduler) and on a :class:`ReferenceRun` (read from the
metadata DB). Every rule that can refuse a selection lives here, so the CLI, the Python client, the
plugin endpoint and the scheduler listener refuse the same selections with the same messages.

The rules (SageMaker's, plus what its users asked for):

- the selection is not empty and names known steps;
- every step on a path between two selected steps is selected too (``include_between`` adds them);
- the reference run is a finished run (success or failed) of the same pipeline;
- each unselected step upstream of a selected one is reused: it succeeded in the reference run (or
  was skipped there by a branch its condition really took) and its fingerprint is unchanged since
  (see :mod:`airflow_provider_mlpipe.fingerprint`): the same digest (definition and code, imported
  modules included), the same content of its literal local inputs as the serialized DAG reports them
  (``StepInfo.sources``), and the same values of the parameters it read. A refusal names the code file
  or input that changed. What the serialized DAG cannot tell (a change since the DAG processor's last
  parse, S3 inputs, inputs given by parameters) the selected steps check when they start
  (:mod:`airflow_provider_mlpipe.selective.verify`);
- only an outcome that was computed is reused: a step that did not run in the reference run because
  that run was a selective run that did not select it has nothing to reuse. A step the reference run
  itself reused is followed to the run where it ran (``origin_run_id``);
- a reused condition step keeps its outcome, so a selected step in the branch it did not take is
  refused (select the condition step too), as is a selected step in a branch of a condition that
  was never evaluated;
- a selected step that would certainly be skipped (it reads data from a step that was skipped) is
  refused: a selective run runs what it selects;
- the other unselected steps do not run, and each says why;
- parameters are the reference run's, with the given overrides; unknown names are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.fingerprint import source_changes
from airflow_provider_mlpipe.selective.model import (
    CONF_KEY,
    FINISHED_RUN_STATES,
    RECORDED_KEYS,
    ReferenceRun,
    ReferenceStep,
    SelectiveExecutionConfig,
    SelectivePlan,
    StepInfo,
    is_unapplied_selective_run,
)

# The data classes and the conf block live in selective.model; this module keeps the planning and the
# import path every caller has used.
__all__ = [
    "CONF_KEY",
    "FINISHED_RUN_STATES",
    "RECORDED_KEYS",
    "REUSABLE_STEP_STATES",
    "ReferenceRun",
    "ReferenceStep",
    "SelectiveExecutionConfig",
    "SelectivePlan",
    "StepInfo",
    "ancestors",
    "check_selected_names",
    "choose_reference_run",
    "descendants",
    "is_unapplied_selective_run",
    "plan_selective_run",
    "provenance",
    "steps_between",
]

REUSABLE_STEP_STATES = frozenset({"success", "skipped"})


def ancestors(upstream: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """Every step upstream of any of ``names`` (not including them unless one is upstream of another)."""
    found: set[str] = set()
    pending = [dependency for name in names for dependency in upstream.get(name, ())]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(upstream.get(name, ()))
    return found


def descendants(upstream: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """Every step downstream of any of ``names``."""
    downstream: dict[str, set[str]] = {}
    for name, dependencies in upstream.items():
        for dependency in dependencies:
            downstream.setdefault(dependency, set()).add(name)
    return ancestors(downstream, names)


def steps_between(upstream: Mapping[str, Iterable[str]], selected: Iterable[str]) -> set[str]:
    """The steps on some path from one selected step to another."""
    chosen = set(selected)
    between: set[str] = set()
    for name in chosen:
        between |= descendants(upstream, [name]) & ancestors(upstream, chosen)
    return between - chosen


def choose_reference_run(
    runs: Iterable[ReferenceRun], source_run_id: str | None, pipeline: str
) -> ReferenceRun:
    """Check the reference run (or pick the latest finished one from ``runs``, newest first).

    :param runs: candidate runs of the pipeline, newest first (only the named one if one is named).
    :param source_run_id: the run the user named, if any.
    :param pipeline: the pipeline being run.
    """
    candidates = list(runs)
    if source_run_id is None:
        for run in candidates:
            if run.state in FINISHED_RUN_STATES:
                return run
        raise SelectiveExecutionError(
            f"pipeline {pipeline!r} has no finished run to take outputs from; run it in full first"
        )
    for run in candidates:
        if run.run_id == source_run_id:
            if run.pipeline != pipeline:
                raise SelectiveExecutionError(
                    f"run {source_run_id!r} is a run of pipeline {run.pipeline!r}, not of {pipeline!r}"
                )
            if run.state not in FINISHED_RUN_STATES:
                raise SelectiveExecutionError(
                    f"run {source_run_id!r} of pipeline {pipeline!r} is {run.state}; a reference run "
                    "must have finished (success or failed)"
                )
            return run
    raise SelectiveExecutionError(f"pipeline {pipeline!r} has no run {source_run_id!r}")


def plan_selective_run(
    pipeline: str,
    steps: Mapping[str, StepInfo],
    config: SelectiveExecutionConfig,
    reference: ReferenceRun,
    *,
    parameter_defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> SelectivePlan:
    """Decide what a selective run does with each step, or refuse with a message naming what is wrong.

    :param pipeline: the pipeline (DAG id).
    :param steps: the current definition of every step.
    :param config: the selection and the reference run asked for.
    :param reference: the reference run (already checked by :func:`choose_reference_run`).
    :param parameter_defaults: the pipeline's parameters and their current defaults.
    :param overrides: parameter values that replace the reference run's.
    """
    upstream = {name: set(info.upstream) for name, info in steps.items()}
    selected = _checked_selection(pipeline, steps, upstream, config)
    parameters = _parameters(reference, parameter_defaults, overrides or {})
    effective = {**parameter_defaults, **parameters}
    plan = SelectivePlan(
        pipeline=pipeline,
        source_run_id=reference.run_id,
        selected=[name for name in _ordered(steps, upstream) if name in selected],
        parameters=parameters,
        include_between=config.include_between,
    )
    needed = ancestors(upstream, selected) - selected
    problems = []
    for name in sorted(needed):
        problem = _reuse(plan, steps[name], reference, effective)
        if problem:
            problems.append(f"{name} ({problem})")
    if problems:
        raise SelectiveExecutionError(
            f"cannot reuse step(s) of run {reference.run_id!r}: {'; '.join(problems)}. "
            "Select these steps too, or pick another reference run"
        )
    _check_kept_outcomes(plan, steps, selected, reference)
    _check_selected_steps_run(plan, steps)
    downstream = descendants(upstream, selected)
    for name in steps:
        if name in selected or name in needed:
            continue
        plan.not_run[name] = (
            "not selected: downstream of the selected steps"
            if name in downstream
            else "not selected and not needed by a selected step"
        )
    # What each selected step checks again when it starts (selective/verify.py).
    plan.reused_upstream = {
        name: sorted(ancestors(upstream, [name]) & plan.reused.keys()) for name in plan.selected
    }
    return plan


def check_selected_names(pipeline: str, steps: Iterable[str], config: SelectiveExecutionConfig) -> None:
    """Refuse an empty selection or unknown step names (checked before looking for a reference run)."""
    known = list(steps)
    if not config.selected_steps:
        raise SelectiveExecutionError(f"select at least one step of pipeline {pipeline!r}")
    unknown = [name for name in config.selected_steps if name not in known]
    if unknown:
        raise SelectiveExecutionError(
            f"pipeline {pipeline!r} has no step(s) {', '.join(unknown)}; its steps: {', '.join(known)}"
        )


def _checked_selection(
    pipeline: str,
    steps: Mapping[str, StepInfo],
    upstream: Mapping[str, set[str]],
    config: SelectiveExecutionConfig,
) -> set[str]:
    check_selected_names(pipeline, steps, config)
    selected = set(config.selected_steps)
    missing = steps_between(upstream, selected)
    if missing and not config.include_between:
        ordered = [name for name in _ordered(steps, upstream) if name in missing]
        raise SelectiveExecutionError(
            f"step(s) {', '.join(ordered)} lie between selected steps and must be selected too "
            "(add them, or use --include-between / include_between=True)"
        )
    return selected | missing


def _parameters(
    reference: ReferenceRun, parameter_defaults: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    known = list(parameter_defaults)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise SelectiveExecutionError(
            f"unknown parameter(s) {', '.join(unknown)}; the pipeline has: {', '.join(known) or 'none'}"
        )
    inherited = {key: value for key, value in reference.conf.items() if key in known}
    return {**inherited, **overrides}


def provenance(reference: ReferenceRun, name: str) -> tuple[str, str]:
    """How step ``name`` came to its state in the reference run, and in which run that was computed.

    ``ran``: it ran (or was skipped by a branch) in the reference run itself; ``reused``: the
    reference run, a selective run, took its outputs from another run (the origin is then in its
    record); ``reused_skipped``: the reference run recorded it as skipped because a branch skipped it
    in an earlier run; ``not_run``: the reference run was a selective run that did not run it at all.
    """
    block = reference.conf.get(CONF_KEY)
    if not isinstance(block, Mapping) or "reused_steps" not in block:
        return "ran", reference.run_id
    if name in (block.get("selected_steps") or ()):
        return "ran", reference.run_id
    if name in (block.get("reused_steps") or ()):
        previous = reference.steps.get(name)
        record = previous.record if previous is not None else None
        origin = record.get("origin_run_id") if isinstance(record, Mapping) else None
        return "reused", str(origin or block.get("source_run_id") or reference.run_id)
    skipped = block.get("reused_skipped_steps")
    if isinstance(skipped, Mapping) and name in skipped:
        return "reused_skipped", str(skipped[name])
    return "not_run", reference.run_id


def _reuse(
    plan: SelectivePlan, info: StepInfo, reference: ReferenceRun, effective: Mapping[str, Any]
) -> str | None:
    """Record ``info`` as reused in ``plan``; return why it cannot be, if it cannot.

    :param effective: every parameter's value in the new run.
    """
    run_id = reference.run_id
    previous = reference.steps.get(info.name)
    state = previous.state if previous is not None else None
    how, origin = provenance(reference, info.name)
    if how == "not_run":
        return (
            f"it did not run in that run: run {run_id} was a selective run that did not select it, "
            "so it has no outcome to reuse"
        )
    if state not in REUSABLE_STEP_STATES:
        return f"it did not succeed in that run: {state or 'never ran'}"
    if state == "skipped":
        # A skip that a branch decided (in this run, or in the run it was reused from) is an outcome.
        plan.reused_skipped[info.name] = origin
        return None
    record = previous.record if previous is not None else None
    if not isinstance(record, Mapping) or "outputs" not in record:
        return "that run holds no outputs of it"
    changed = source_changes(record, info.sources)
    if record.get("digest") != info.digest:
        named = [change for change in changed if change.startswith("code file")]
        if named:
            return f"its code changed since that run: {', '.join(named)}"
        return "its definition or code changed since that run"
    if changed:
        # Its outputs were computed from other data: they do not stand for what it would compute now.
        return "; ".join(changed)
    # Its outputs were computed from that run's parameter values: they only stand for these if equal.
    changed = [
        f"{name} was {used!r}, now {effective.get(name)!r}"
        for name, used in sorted((record.get("parameters") or {}).items())
        if effective.get(name) != used
    ]
    if changed:
        return f"it reads parameter(s) that differ: {', '.join(changed)}"
    plan.reused[info.name] = {
        **record,
        "source_run_id": run_id,
        "origin_run_id": record.get("origin_run_id", run_id),
    }
    return None


def _check_kept_outcomes(
    plan: SelectivePlan, steps: Mapping[str, StepInfo], selected: set[str], reference: ReferenceRun
) -> None:
    """A reused condition keeps its outcome: refuse selected steps in the branch it did not take, and
    in either branch of a condition that was skipped (never evaluated) in the reference run."""
    for name, info in steps.items():
        if info.kind != "condition" or (name not in plan.reused and name not in plan.reused_skipped):
            continue
        if name in plan.reused_skipped:
            stranded = [step for step in info.if_steps + info.else_steps if step in selected]
            if stranded:
                raise SelectiveExecutionError(
                    f"step(s) {', '.join(stranded)} are in a branch of {name}, which was never evaluated "
                    f"in run {reference.run_id!r} (it was skipped there); select {name} too, or pick a "
                    "reference run where it ran"
                )
            continue
        outcome = (plan.reused[name].get("metadata") or {}).get("outcome")
        if outcome is None:
            continue
        not_taken = info.else_steps if outcome else info.if_steps
        stranded = [step for step in not_taken if step in selected]
        if stranded:
            branch = "else" if outcome else "if"
            raise SelectiveExecutionError(
                f"step(s) {', '.join(stranded)} are in the {branch} branch of {name}, which was not taken "
                f"in run {reference.run_id!r} (outcome {outcome}); select {name} too to evaluate it again"
            )


def _check_selected_steps_run(plan: SelectivePlan, steps: Mapping[str, StepInfo]) -> None:
    """Refuse selected steps that would certainly be skipped: a step that reads data from a step
    that will not run is skipped, as is a step all of whose upstream steps are skipped."""
    skipped = set(plan.reused_skipped)
    reasons: dict[str, str] = {}
    for name in plan.selected:  # in topological order
        info = steps[name]
        silent = sorted(info.data_upstream & skipped)
        if silent:
            reasons[name] = f"it reads outputs of {', '.join(silent)}, which will not run"
        elif info.upstream and info.upstream <= skipped:
            reasons[name] = f"every step before it ({', '.join(sorted(info.upstream))}) will be skipped"
        if name in reasons:
            skipped.add(name)
    if reasons:
        origins = sorted({plan.reused_skipped[name] for name in plan.reused_skipped})
        raise SelectiveExecutionError(
            "selected step(s) would be skipped, not run: "
            + "; ".join(f"{name} ({reason})" for name, reason in reasons.items())
            + f". Steps skipped by a branch in run(s) {', '.join(origins)} stay skipped: select the "
            "condition step that skipped them too, or pick another reference run"
        )


def _ordered(steps: Mapping[str, StepInfo], upstream: Mapping[str, set[str]]) -> list[str]:
    import graphlib

    return list(graphlib.TopologicalSorter({name: sorted(upstream[name]) for name in steps}).static_order())
