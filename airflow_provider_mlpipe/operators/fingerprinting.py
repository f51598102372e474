"""A step's fingerprint as its task sees it when it starts (see :mod:`airflow_provider_mlpipe.fingerprint`).

Upstream artifacts are named by the digests in their producers' records (no data is read); literal
inputs by the content digest of what is at their location now (remembered by identity: a large file
is hashed once); code by the digest and code files read when this task's DAG was built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.fingerprint import (
    ARTIFACT_INPUT,
    LITERAL_INPUT,
    StepFingerprint,
    code_digest,
    literal_sources,
)
from airflow_provider_mlpipe.model.expressions import ExecutionVariable, JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import Parameter
from airflow_provider_mlpipe.model.steps import Step
from airflow_provider_mlpipe.settings import aws_conn_id_for

if TYPE_CHECKING:
    from airflow_provider_mlpipe.operators.base import StepRuntime


def literal_input_key(input_name: str) -> str:
    """How a literal input is named among a step's inputs (its field)."""
    return f"inputs.{input_name}"


def artifact_inputs(runtime: StepRuntime) -> dict[str, dict[str, Any]]:
    """Each upstream output the step reads (``Step.output``), with the digest its producer recorded."""
    step = runtime.step
    items: dict[str, dict[str, Any]] = {}
    for _, reference in step.references():
        if isinstance(reference, StepOutput):
            producer, output = reference.step_name, reference.output_name
        elif isinstance(reference, JsonGet):
            files = {item.name: item for item in runtime.pipeline.step(reference.step_name).property_files()}
            producer, output = reference.step_name, files[reference.property_file].output_name
        else:
            continue
        key = f"{producer}.{output}"
        if key in items:
            continue
        ref = runtime.output_ref(producer, output)
        producer_facts = ref.metadata.get("producer")
        made_by: dict[str, Any] = producer_facts if isinstance(producer_facts, dict) else {}
        items[key] = {
            "kind": ARTIFACT_INPUT,
            "step": producer,
            "output": output,
            "digest": ref.digest,
            "type": ref.type,
            "size": ref.size,
            "uri": ref.uri,
            "run_id": made_by.get("run_id"),
        }
    return items


def literal_input_digests(runtime: StepRuntime, step: Step | None = None) -> dict[str, dict[str, Any]]:
    """Each literal input's location and content digest, as it is now.

    :param step: another step of the pipeline to look at (a reused one), evaluated with this run's
        parameters; default the running step.
    """
    from airflow_provider_mlpipe.fingerprint.inputs import location_digest
    from airflow_provider_mlpipe.operators.input_roots import checked_location

    step = step or runtime.step
    items: dict[str, dict[str, Any]] = {}
    for name, source in literal_sources(step).items():
        if step is runtime.step:
            location = runtime.input_location(source, input_name=name)
        else:
            location = runtime.evaluate(source)
            if not isinstance(source, str):
                location = checked_location(
                    str(location), step=step.name, input_name=name, base_dir=step.base_dir
                )
        try:
            content = location_digest(
                str(location),
                base_dir=step.base_dir,
                store=runtime.store,
                aws_conn_id=aws_conn_id_for(runtime.pipeline),
            )
        except FileNotFoundError as error:
            raise StepExecutionError(
                f"step {step.name!r}: input {name!r} ({location}) not found: {error}"
            ) from None
        items[literal_input_key(name)] = {"kind": LITERAL_INPUT, "location": location, **content.to_dict()}
    return items


def runtime_fingerprint(runtime: StepRuntime, digest: str, code_files: Mapping[str, str]) -> StepFingerprint:
    """The fingerprint of the running step.

    :param digest: the step's digest, computed when this task's DAG was built.
    :param code_files: its code inventory (``fingerprint.code_inventory``), read in the same build.
    """
    step = runtime.step
    parameters: dict[str, Any] = {}
    execution: dict[str, Any] = {}
    for _, reference in step.references():
        if isinstance(reference, Parameter):
            parameters[reference.name] = runtime.parameters.get(reference.name)
        elif isinstance(reference, ExecutionVariable):
            execution[reference.name] = runtime.execution_variable(reference.name)
    return StepFingerprint(
        digest=digest,
        code_digest=code_digest(code_files),
        code_files=dict(code_files),
        parameters=dict(sorted(parameters.items())),
        execution=execution,
        inputs={**artifact_inputs(runtime), **literal_input_digests(runtime)},
    )
