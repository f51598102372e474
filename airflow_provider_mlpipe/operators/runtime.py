"""What a step sees while it runs (:class:`StepRuntime`): the run's parameter values, its upstream
steps' records and outputs, property files, and its inputs staged into folders."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
from airflow_provider_mlpipe.exceptions import ExpressionError, ParameterValidationError, StepExecutionError
from airflow_provider_mlpipe.model.expressions import StepOutput, evaluate_value
from airflow_provider_mlpipe.operators.staging import stage_location
from airflow_provider_mlpipe.selective.model import CONF_KEY as SELECTIVE_CONF_KEY
from airflow_provider_mlpipe.selective.model import is_unapplied_selective_run
from airflow_provider_mlpipe.settings import artifact_store_for, aws_conn_id_for

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlpipe.artifacts.store import ArtifactStore
    from airflow_provider_mlpipe.operators.base import MlpipeStepOperator

# Keys of dag_run.conf that are not pipeline parameters.
RESERVED_CONF_KEYS = frozenset({SELECTIVE_CONF_KEY, NO_CACHE_CONF_KEY})


class StepRuntime:
    """What a step sees while it runs: parameter values, upstream outputs, property files.

    Implements the model's ``EvaluationContext``. Upstream records are read from XCom once each.

    :param operator: the running operator.
    :param context: the Airflow task context.
    """

    def __init__(self, operator: MlpipeStepOperator, context: Context) -> None:
        self.operator = operator
        self.pipeline = operator.pipeline
        self.step = operator.step
        self.context = context
        self.store: ArtifactStore = artifact_store_for(self.pipeline)
        self._records: dict[str, dict] = {}
        self._property_files: dict[tuple[str, str], Any] = {}
        self._locations: dict[str, str] = {}
        self.parameters = self._resolve_parameters()
        # Values of parameters declared secret: masked in the task log, cut from failure reasons.
        self.secret_values = self._mask_secret_parameters()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"mlpipe-{self.step.name}-"))
        # Time spent loading upstream outputs from the store: the provider's work, not the step's.
        self.loading_seconds = 0.0

    def _resolve_parameters(self) -> dict[str, Any]:
        dag_run = self.context.get("dag_run")
        conf = dict(getattr(dag_run, "conf", None) or {})
        if is_unapplied_selective_run(conf):
            # The plugin's listener records reused steps when the scheduler starts such a run; if it
            # did not (plugin missing from the scheduler), running every step would silently ignore
            # the selection.
            raise AirflowFailException(
                f"run {self.context['run_id']} asks for selective execution, but its reused steps were not "
                "recorded: is airflow-provider-mlpipe installed where the scheduler runs?"
            )
        given = {key: value for key, value in conf.items() if key not in RESERVED_CONF_KEYS}
        try:
            return self.pipeline.resolve_parameters(given)
        except ParameterValidationError as error:
            raise ParameterValidationError(f"pipeline {self.pipeline.name!r}: {error}") from None

    def _mask_secret_parameters(self) -> list[str]:
        from airflow.sdk.log import mask_secret

        values = []
        for name, parameter in self.pipeline.parameters.items():
            value = self.parameters.get(name)
            if parameter.secret and value not in (None, ""):
                mask_secret(value, name)
                values.append(str(value))
        return values

    # -- EvaluationContext -----------------------------------------------------------------
    def parameter(self, name: str) -> Any:
        try:
            return self.parameters[name]
        except KeyError:
            raise ExpressionError(f"unknown parameter {name!r}") from None

    def record(self, step_name: str) -> dict:
        """The XCom record of an upstream step; skips this step if that one did not run."""
        if step_name not in self._records:
            record = self.context["ti"].xcom_pull(task_ids=step_name, key="return_value")
            if not isinstance(record, Mapping) or "outputs" not in record:
                raise AirflowSkipException(
                    f"step {self.step.name!r} reads step {step_name!r}, which did not run in this execution "
                    "(it is in a branch that was not taken)"
                )
            self._records[step_name] = dict(record)
        return self._records[step_name]

    def output_ref(self, step_name: str, output_name: str) -> ArtifactRef:
        """The artifact reference of an upstream output."""
        outputs = self.record(step_name)["outputs"]
        if output_name not in outputs:
            raise StepExecutionError(
                f"step {step_name!r} produced no output {output_name!r} (it produced: {', '.join(outputs)})"
            )
        return ArtifactRef.from_dict(outputs[output_name])

    def step_output(self, step_name: str, output_name: str) -> Any:
        from airflow_provider_mlpipe.artifacts.serializers import load_value

        started = time.perf_counter()
        ref = self.output_ref(step_name, output_name)
        try:
            return load_value(
                self.store, ref, allow_pickle=self.operator.allow_pickle, workdir=self.workdir / "inputs"
            )
        finally:
            self.loading_seconds += time.perf_counter() - started

    def property_file(self, step_name: str, property_file: str) -> Any:
        import json

        key = (step_name, property_file)
        if key not in self._property_files:
            producer = self.pipeline.step(step_name)
            declared = {item.name: item for item in producer.property_files()}[property_file]
            directory = self.step_output(step_name, declared.output_name)
            path = Path(directory) / declared.path
            try:
                self._property_files[key] = json.loads(path.read_text())
            except (OSError, ValueError) as error:
                raise ExpressionError(
                    f"property file {property_file!r} ({declared.path} in output {declared.output_name!r} "
                    f"of step {step_name!r}) could not be read: {error}"
                ) from None
        return self._property_files[key]

    def item(self) -> Any:
        """The item this run of a fan-out step works on (``{item}``)."""
        if not self.operator.is_item_run:
            raise ExpressionError("{item} is only defined inside a step with for_each")
        return self.operator.mlpipe_item

    def execution_variable(self, name: str) -> Any:
        if name == "pipeline_name":
            return self.pipeline.name
        if name == "execution_id":
            return self.context["run_id"]
        dag_run = self.context.get("dag_run")
        start = getattr(dag_run, "start_date", None) or getattr(dag_run, "run_after", None)
        return start.isoformat() if start is not None else None

    # -- helpers for steps -----------------------------------------------------------------
    def evaluate(self, value: Any) -> Any:
        """Evaluate a literal or expression (lists and dicts item by item)."""
        return evaluate_value(value, self)

    def stage_input(self, source: Any, destination: Path, *, input_name: str) -> Path:
        """Put an input's content into the directory ``destination`` and return it.

        An input that is not a literal in the spec (a parameter, an expression) must lie under the
        input roots (:mod:`airflow_provider_mlpipe.operators.input_roots`).

        :param source: a step output (materialised from the store), or a path/URL, possibly an expression.
        :param destination: a directory to create and fill.
        :param input_name: the input's name (processing input, training channel), for errors.
        """
        from airflow_provider_mlpipe.artifacts.serializers import materialize

        destination.mkdir(parents=True, exist_ok=True)
        if isinstance(source, StepOutput):
            started = time.perf_counter()
            materialize(self.store, self.output_ref(source.step_name, source.output_name), destination)
            self.loading_seconds += time.perf_counter() - started
            return destination
        location = self.input_location(source, input_name=input_name)
        stage_location(
            location, destination, base_dir=self.step.base_dir, aws_conn_id=aws_conn_id_for(self.pipeline)
        )
        return destination

    def input_location(self, source: Any, *, input_name: str) -> str:
        """Where a literal input (not a step output) is: its path or URL, evaluated once.

        An input that is not a literal in the spec (a parameter, an expression) must lie under the
        input roots (:mod:`airflow_provider_mlpipe.operators.input_roots`).
        """
        if input_name in self._locations:
            return self._locations[input_name]
        location = self.evaluate(source)
        if not isinstance(location, str):
            raise StepExecutionError(f"an input must be a step output or a path/URL, got {location!r}")
        if not isinstance(source, str):  # chosen at run time, not by the spec's author
            from airflow_provider_mlpipe.operators.input_roots import checked_location

            location = checked_location(
                location, step=self.step.name, input_name=input_name, base_dir=self.step.base_dir
            )
        self._locations[input_name] = location
        return location

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
