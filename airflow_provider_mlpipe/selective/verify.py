"""The last check of a selective run, made by each selected step when its task starts.

The planner refuses to reuse a step whose fingerprint changed before any run is created, but it works
from the serialized DAG: its view of code and of literal input files is that of the DAG processor's
last parse (see :mod:`airflow_provider_mlpipe.selective.manifest`), and it cannot see an input given
through a parameter or on S3 at all. A reused step starts no task, so it cannot check itself. Its
consumers can: before a selected step does any work, it recomputes, on the worker, the code digest
and the literal inputs' content digests of every step reused upstream of it, and compares them with
what those steps recorded in the run they were computed in. A difference fails the step (no retry:
trying again would not change the files), naming the reused step and what changed, before anything
is computed from outputs that no longer stand for the current code and data.

The common case, nothing changed, costs no request: the run's creation put in its conf, for each
selected step, one digest over the reused steps upstream of it (``REUSED_CHECK_KEY``), and the step
computes the same digest from its own build. Only when the two differ does it read the reused steps'
fingerprints (one XCom) and compare step by step, to name what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.selective.manifest import OUTCOME_TASK_ID
from airflow_provider_mlpipe.selective.model import FINGERPRINTS_XCOM_KEY, REUSED_CHECK_KEY, reused_check
from airflow_provider_mlpipe.selective.rerun import RETURN_VALUE, applied_selective_block

if TYPE_CHECKING:
    from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime


def verify_reused_upstream(operator: MlpipeStepOperator, context: Any, runtime: StepRuntime) -> None:
    """Fail the running step if a step reused upstream of it changed since it was computed.

    Does nothing outside selective runs.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_mlpipe.fingerprint import code_inventory, differences
    from airflow_provider_mlpipe.operators.fingerprinting import literal_input_digests

    block = applied_selective_block(getattr(context.get("dag_run"), "conf", None))
    if block is None:
        return
    reused = set(block.get("reused_steps") or ()) & set(operator.get_flat_relative_ids(upstream=True))
    if not reused:
        return
    literal: dict[str, dict[str, Any]] = {}

    def literal_inputs(name: str) -> dict[str, Any]:
        """A reused step's literal inputs as they are now: computed once, for either check."""
        if name not in literal:
            literal[name] = literal_input_digests(runtime, operator.pipeline.steps[name])
        return literal[name]

    if unchanged_since_planned(operator, block, reused, literal_inputs):
        return
    fingerprints = reused_fingerprints(block, context)
    problems = []
    for name in sorted(reused):
        if isinstance(fingerprints, Mapping) and isinstance(fingerprints.get(name), Mapping):
            record = fingerprints[name]
        else:
            record = context["ti"].xcom_pull(task_ids=name, key=RETURN_VALUE)
        step = operator.pipeline.steps.get(name)
        task = operator.dag.task_dict.get(name) if operator.dag is not None else None
        if not isinstance(record, Mapping) or step is None or task is None:
            continue
        # The code files as this worker's build of the DAG read them (at this task's start).
        code_files = getattr(task, "mlpipe_code_files", None)
        current: dict[str, Any] = {
            "digest": built_digest(task),
            "code_files": code_inventory(step) if code_files is None else code_files,
        }
        recorded: dict[str, Any] = {"digest": record.get("digest"), "code_files": record.get("code_files")}
        inputs = record.get("inputs")
        if isinstance(inputs, Mapping):
            current["inputs"] = literal_inputs(name)
            recorded["inputs"] = {key: value for key, value in inputs.items() if key in current["inputs"]}
        changes = differences(recorded, current)
        if changes:
            origin = record.get("origin_run_id") or block.get("source_run_id")
            problems.append(f"{name} (computed in run {origin}): {'; '.join(changes)}")
    if problems:
        raise AirflowFailException(
            f"step {operator.step.name!r} does not run: step(s) reused upstream of it changed since they were "
            f"computed: {' | '.join(problems)}. Start a selective run that selects them too"
        )


def unchanged_since_planned(
    operator: MlpipeStepOperator,
    block: Mapping[str, Any],
    reused: set[str],
    literal_inputs: Callable[[str], Mapping[str, Any]],
) -> bool:
    """Whether the reused steps upstream of the running step are as their records say, by the one
    digest the run's creation put in the conf for this step (``REUSED_CHECK_KEY``): no request.

    False when the digests differ or the run has none (made before it existed, or with a reused
    step whose record cannot say): the caller then compares step by step, which names what changed.

    :param literal_inputs: a reused step's literal inputs as they are now, by step name.
    """
    expected = (block.get(REUSED_CHECK_KEY) or {}).get(operator.step.name)
    if not isinstance(expected, str) or operator.dag is None:
        return False
    parts: dict[str, tuple[Any, Mapping[str, Any]]] = {}
    for name in reused:
        task = operator.dag.task_dict.get(name)
        if name not in operator.pipeline.steps or task is None:
            return False
        parts[name] = (
            built_digest(task),
            {key: item.get("digest") for key, item in literal_inputs(name).items()},
        )
    return reused_check(parts) == expected


def built_digest(task: Any) -> Any:
    """A step task's digest, as this worker's build of the DAG computed it."""
    return (getattr(task, "mlpipe_step", None) or {}).get("digest")


def reused_fingerprints(block: Mapping[str, Any], context: Any) -> Mapping[str, Any] | None:
    """What each reused step of the run was computed from, by step name, in one XCom request.

    The run's creation stored them in one XCom of the outcome task; a run made before that carries
    them in its conf, and a run made before either has none (None: the caller reads each reused
    step's own XCom record instead, one request each).
    """
    in_conf = block.get("reused_fingerprints")
    if isinstance(in_conf, Mapping):
        return in_conf
    stored = context["ti"].xcom_pull(task_ids=OUTCOME_TASK_ID, key=FINGERPRINTS_XCOM_KEY)
    return stored if isinstance(stored, Mapping) else None
