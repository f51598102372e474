"""The base of every step operator: resolve inputs, run the step, write outputs, return references.

A step's XCom ``return_value`` is a small record (the step's kind and digest, and a reference per
output: URI, digest, type, size); the data itself is in the artifact store. Downstream steps read
the records of their upstream steps and load the values they need from the store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, TriggerRule
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.lineage.openlineage import OpenLineageFacets
from airflow_provider_mlpipe.model.parameters import Parameter
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.model.steps import Step
from airflow_provider_mlpipe.operators.failures import records_failures
from airflow_provider_mlpipe.operators.runtime import RESERVED_CONF_KEYS, StepRuntime
from airflow_provider_mlpipe.operators.staging import stage_location
from airflow_provider_mlpipe.selective.manifest import step_manifest
from airflow_provider_mlpipe.selective.rerun import reapply_unselected_step

if TYPE_CHECKING:
    from airflow.sdk import Context


# The item of a task that is not one run of a fan-out step.
NO_ITEM: Any = None
RECORD_VERSION = 1

# StepRuntime and the reserved conf keys live in operators.runtime, stage_location in operators.staging;
# they stay importable from here, where the step operators and earlier code import them.
__all__ = [
    "NO_ITEM",
    "RECORD_VERSION",
    "RESERVED_CONF_KEYS",
    "MlpipeStepOperator",
    "StepRuntime",
    "parameters_read",
    "stage_location",
    "step_record",
]


def step_record(
    step: Step,
    outputs: Mapping[str, ArtifactRef],
    metadata: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    digest: str | None = None,
) -> dict:
    """The XCom ``return_value`` of a step: references only, never data.

    :param parameters: the values of the pipeline parameters the step read; a selective run reuses
        the step only with the same values.
    :param digest: the step's digest if already computed (it reads the step's code files).
    """
    return {
        "mlpipe": RECORD_VERSION,
        "step": step.name,
        "kind": step.kind,
        "digest": digest or step.digest(),
        "outputs": {name: ref.to_dict() for name, ref in outputs.items()},
        "metadata": dict(metadata or {}),
        "parameters": dict(parameters or {}),
    }


def parameters_read(step: Step) -> list[str]:
    """The names of the pipeline parameters that ``step`` reads."""
    return sorted({reference.name for _, reference in step.references() if isinstance(reference, Parameter)})


class MlpipeStepOperator(OpenLineageFacets, BaseOperator):
    """Runs one pipeline step. Subclasses implement :meth:`run_step` for one step kind.

    :param pipeline: the pipeline the step belongs to.
    :param step: the step to run; its name is the task id.
    """

    ui_color = "#e8f1fb"
    step_kind: ClassVar[str] = ""
    # ``mlpipe_step`` (kind and digest, a small fixed size) is a template field only so that Airflow
    # serializes it with the DAG: the api-server and the scheduler plan selective runs from the
    # serialized DAG without importing any DAG file (see ``selective.manifest``). It holds no Jinja,
    # so rendering leaves it unchanged.
    # ``mlpipe_sources`` (the code files' short digests and the literal local inputs' content digests,
    # see ``fingerprint.sources_manifest``) travels the same way, for the planner to say what changed.
    template_fields: Sequence[str] = ("mlpipe_step", "mlpipe_sources")

    def __init__(self, *, pipeline: Pipeline, step: Step, mlpipe_item: Any = NO_ITEM, **kwargs: Any) -> None:
        policy = step.retry_policy
        if policy is not None:
            kwargs.setdefault("retries", policy.max_attempts - 1)
            kwargs.setdefault("retry_delay", policy.interval_seconds)
            kwargs.setdefault(
                "retry_exponential_backoff", policy.backoff_rate if policy.backoff_rate > 1 else 0
            )
            if policy.max_interval_seconds is not None:
                kwargs.setdefault("max_retry_delay", policy.max_interval_seconds)
        # A step after a condition runs when none of its upstream steps failed and at least one ran:
        # this is what lets branches rejoin. A step whose *data* comes from a skipped step skips itself.
        kwargs.setdefault("trigger_rule", TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        if step.description:
            kwargs.setdefault("doc_md", step.description)
        if step.display_name:
            kwargs.setdefault("task_display_name", step.display_name)
        if step.timeout is not None:
            kwargs.setdefault("execution_timeout", timedelta(seconds=step.timeout))
        # A fan-out's internal tasks (see model.fanout) have task ids of their own.
        kwargs.setdefault("task_id", step.name)
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.step = step
        from airflow_provider_mlpipe.fingerprint import step_sources

        digest, code_files, sources = step_sources(step)
        self.mlpipe_step = step_manifest(step.kind, digest)
        self.mlpipe_sources = sources
        # The code files as this DAG's build read them: on a worker the DAG is built when the task
        # starts, so the task's fingerprint and its check of reused steps take them from here instead
        # of reading and hashing every file again.
        self.mlpipe_code_files = code_files
        # One item of a fan-out step (set by Airflow's dynamic task mapping), else NO_ITEM.
        self.mlpipe_item = mlpipe_item

    @property
    def is_item_run(self) -> bool:
        """Whether this task instance is one item's run of a fan-out step."""
        return self.task_id != self.step.name and self.step.is_fan_out

    @property
    def allow_pickle(self) -> bool:
        return bool(getattr(self.step, "allow_pickle", False))

    @records_failures
    def execute(self, context: Context) -> dict:
        # A step that a selective run did not select only starts when someone cleared it in Airflow:
        # it takes the reference run's outputs again (or skips), it never recomputes.
        # Only the step's own task: a fan-out's internal tasks follow their step (see operators.fanout).
        own_task = self.task_id == self.step.name
        reapplied = reapply_unselected_step(self.step.name, context) if own_task else None
        if reapplied is not None:
            return reapplied
        record = self.run_and_record(context)
        self.after_record(context, record)
        return record

    def after_record(self, context: Context, record: dict) -> None:
        """Called with the step's record after a real run (not after a reused step is re-applied)."""

    def run_and_record(self, context: Context) -> dict:
        """Run the step (or take its outputs from the cache) and return its record.

        The record holds the step's fingerprint and its parts (code files, parameters, inputs with
        their digests), and the step's lineage is written to the store: see
        :mod:`airflow_provider_mlpipe.fingerprint` and :mod:`airflow_provider_mlpipe.lineage`.
        """
        from airflow_provider_mlpipe.lineage.index import record_lineage
        from airflow_provider_mlpipe.operators.caching import StepCaching
        from airflow_provider_mlpipe.operators.fingerprinting import runtime_fingerprint
        from airflow_provider_mlpipe.selective.verify import verify_reused_upstream

        started = time.perf_counter()
        runtime = StepRuntime(self, context)
        extra: dict[str, Any] = {}
        try:
            if self.step.loop_gate is not None:
                from airflow_provider_mlpipe.operators.loop import check_loop_gate

                check_loop_gate(runtime, self.step.loop_gate)
            # The digest computed when this task's DAG was built, at this task's start.
            fingerprinting = time.perf_counter()
            fingerprint = runtime_fingerprint(runtime, self.mlpipe_step["digest"], self.mlpipe_code_files)
            fingerprinted = time.perf_counter() - fingerprinting
            verifying = time.perf_counter()
            verify_reused_upstream(self, context, runtime)
            verified = time.perf_counter() - verifying
            # A fan-out step is not cached as a whole: its items run as their own (mapped) tasks.
            caching = None if self.step.is_fan_out else StepCaching.for_run(runtime, fingerprint)
            entry = caching.lookup() if caching is not None else None
            ready = time.perf_counter()
            if caching is not None and entry is not None:
                outputs = {name: ArtifactRef.from_dict(ref) for name, ref in entry.outputs.items()}
                metadata: dict[str, Any] = dict(entry.metadata)
                extra = caching.hit_fields(entry)
                ran = ready
            else:
                values, metadata = self.run_item(runtime) if self.is_item_run else self.run_step(runtime)
                ran = time.perf_counter()
                outputs = self.save_outputs(runtime, values)
                if caching is not None:
                    extra = caching.store(outputs, metadata)
        finally:
            runtime.cleanup()
        used = {name: runtime.parameters.get(name) for name in parameters_read(self.step)}
        record = step_record(self.step, outputs, metadata, used, digest=self.mlpipe_step["digest"])
        record.update(fingerprint.to_record(), run_id=context.get("run_id"), **extra)
        if self.is_item_run:
            record["item"] = self.mlpipe_item
        else:  # an item's run is part of its step's: the step's own task writes the lineage
            record_lineage(
                runtime.store, self.pipeline.name, str(context.get("run_id")), self.step.name, record
            )
        total = time.perf_counter() - started
        step_work = (ran - ready) - runtime.loading_seconds
        # Where the task's time went: the step's own work, and the provider's (parameters, loading
        # inputs from the store, writing outputs, the record).
        record["timings"] = {
            "total_s": round(total, 6),
            "provider_s": round(total - step_work, 6),
            "fingerprint_s": round(fingerprinted, 6),
            # The check of the steps a selective run reused upstream (0 outside selective runs).
            "verify_reused_s": round(verified, 6),
        }
        self.log.info(
            "Step %s (%s) %s in %.3f s (provider %.3f s); fingerprint %s; outputs: %s",
            self.step.name,
            self.step.kind,
            "taken from the cache" if extra.get("cache", {}).get("hit") else "done",
            total,
            total - step_work,
            fingerprint.value[:19],
            ", ".join(f"{name}={ref.digest[:19]}" for name, ref in outputs.items()) or "none",
        )
        self.mlpipe_record = record  # for the OpenLineage facets on completion
        return record

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the step; return (output name -> value or Path, metadata for the record)."""
        raise NotImplementedError

    def run_item(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run the step for one item of a fan-out; a failure names the item."""
        from airflow_provider_mlpipe.operators.failures import failure_reason

        try:
            return self.run_step(runtime)
        except (AirflowSkipException, AirflowFailException):
            raise
        except Exception as error:
            raise StepExecutionError(
                f"step {self.step.name!r}, item {self.mlpipe_item!r}: {failure_reason(error)}"
            ) from error

    def save_outputs(self, runtime: StepRuntime, values: Mapping[str, Any]) -> dict[str, ArtifactRef]:
        from airflow_provider_mlpipe.artifacts.serializers import save_value

        declared = self.step.trial_output_names() if self.is_item_run else self.step.output_names()
        missing = [name for name in declared if name not in values]
        if missing:
            raise StepExecutionError(
                f"step {self.step.name!r} did not produce output(s) {', '.join(missing)}"
            )
        producer = {
            "pipeline": self.pipeline.name,
            "step": self.step.name,
            "run_id": runtime.context.get("run_id"),
        }
        from airflow_provider_mlpipe.artifacts.reference import ArtifactRef

        # A reference is passed through as it is (a loop's or a tuning step's outputs): nothing is copied.
        return {
            name: values[name]
            if isinstance(values[name], ArtifactRef)
            else save_value(runtime.store, values[name], producer={**producer, "output": name})
            for name in declared
        }
