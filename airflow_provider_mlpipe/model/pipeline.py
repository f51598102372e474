"""The pipeline: parameters and steps, and its graph. No Airflow here.

Both front-ends (YAML and the Python classes) produce a :class:`Pipeline`; the DAG factory turns it
into an Airflow DAG. Dependencies come from references (a step reading another's output, or a
``JsonGet`` of its property file), from ``depends_on``, and from condition branches.
"""

from __future__ import annotations

import graphlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import PipelineGraphError, SpecError
from airflow_provider_mlpipe.model.cache import CACHEABLE_KINDS, CacheConfig
from airflow_provider_mlpipe.model.decision_steps import ConditionStep
from airflow_provider_mlpipe.model.expressions import JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import Parameter, resolve_parameters
from airflow_provider_mlpipe.model.pipeline_checks import PipelineChecks
from airflow_provider_mlpipe.model.pipeline_options import (
    MAX_PARALLEL,
    PIPELINE_NAME,
    SCHEDULE_PRESETS,
    ParallelismConfiguration,
    check_count,
    check_schedule,
)
from airflow_provider_mlpipe.model.step_base import Step

if TYPE_CHECKING:
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_provider_mlpipe.client.executions import ExecutionsSession, PipelineExecution
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig

# The options and the checks live in pipeline_options and pipeline_checks; this module keeps the
# Pipeline class and the import path every caller has used.
__all__ = [
    "MAX_PARALLEL",
    "PIPELINE_NAME",
    "SCHEDULE_PRESETS",
    "Locations",
    "ParallelismConfiguration",
    "Pipeline",
    "PipelineChecks",
    "check_count",
    "check_schedule",
]


# Where a problem was found: (step name or None, field or None) -> line in the spec file.
Locations = Mapping[tuple[str | None, str | None], int]


class Pipeline(PipelineChecks):
    """A named set of parameters and steps (SageMaker's ``Pipeline``).

    :param name: unique among pipelines; becomes the DAG id.
    :param parameters: the typed parameters (``ParameterInteger`` ...).
    :param steps: the steps. Steps reachable from them (condition branches, ``depends_on``) are added.
    :param description: shown as the DAG's description.
    :param base_dir: the folder that relative script and data paths start from.
    :param source_file: the spec the pipeline came from, for error messages.
    :param artifact_store: the artifact store URL for this pipeline (default: the provider's setting).
    :param aws_conn_id: the Airflow connection for S3 (the artifact store and ``s3://`` inputs);
        default: ``[mlpipe] aws_conn_id``, else ``aws_default``.
    :param tags: Airflow tags.
    :param schedule: when Airflow starts executions by itself: a cron expression (``0 3 * * *``), a
        preset (``@daily``), or None (only when started; the default).
    :param parallelism_config: how many steps of one execution run at once.
    :param max_concurrent_executions: how many executions of the pipeline run at once (more wait,
        queued); default 16.
    :param cache_config: step caching for every step that can be cached (function, processing,
        training) and has no ``cache_config`` of its own; default off.
    :param locations: line numbers of steps and fields in the source file, for error messages.
    """

    def __init__(
        self,
        name: str,
        parameters: Sequence[Parameter] | None = None,
        steps: Sequence[Step] | None = None,
        *,
        description: str | None = None,
        base_dir: str | Path | None = None,
        source_file: str | None = None,
        artifact_store: str | None = None,
        aws_conn_id: str | None = None,
        tags: Sequence[str] | None = None,
        locations: Locations | None = None,
        schedule: str | None = None,
        parallelism_config: ParallelismConfiguration | None = None,
        max_concurrent_executions: int | None = None,
        cache_config: CacheConfig | None = None,
    ) -> None:
        self.source_file = source_file
        self.locations = dict(locations or {})
        if not isinstance(name, str) or not PIPELINE_NAME.fullmatch(name):
            raise self._error(
                SpecError(f"invalid pipeline name {name!r}: use letters, digits, '_', '-', '.'", field="name")
            )
        self.name = name
        self.description = description
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.artifact_store = artifact_store
        self.aws_conn_id = aws_conn_id
        self.tags = list(tags or [])
        try:
            self.schedule = check_schedule(schedule)
            if max_concurrent_executions is not None:
                check_count(max_concurrent_executions, "max_concurrent_executions")
        except SpecError as error:
            raise self._error(error) from None
        self.parallelism_config = parallelism_config
        self.max_concurrent_executions = max_concurrent_executions
        if cache_config is not None and not isinstance(cache_config, CacheConfig):
            raise self._error(
                SpecError(f"cache_config must be a CacheConfig, got {cache_config!r}", field="cache")
            )
        self.cache_config = cache_config
        self.parameters: dict[str, Parameter] = {}
        for parameter in parameters or []:
            if parameter.name in self.parameters:
                raise self._error(
                    SpecError(f"duplicate parameter {parameter.name!r}", field=f"parameters.{parameter.name}")
                )
            self.parameters[parameter.name] = parameter
        self.steps: dict[str, Step] = {}
        for step in _with_unrolled_loops(_collect_steps(steps or [])):
            if step.name in self.steps:
                if self.steps[step.name] is step:
                    continue
                raise self._error(PipelineGraphError("duplicate step name", step=step.name, field="name"))
            self.steps[step.name] = step
            if step.base_dir is None:
                step.base_dir = self.base_dir
        # The graph is fixed once the pipeline is built: computed once (validation, then the DAG).
        self._upstream: dict[str, set[str]] | None = None
        self._order: list[str] | None = None

    # -- errors ----------------------------------------------------------------------------
    def _error(self, error: SpecError) -> SpecError:
        line = (
            self.locations.get((error.step, error.field))
            or self.locations.get((error.step, (error.field or "").split(".")[0].split("[")[0]))
            or self.locations.get((error.step, None))
        )
        return error.located(file=self.source_file, line=line)

    # -- the graph -------------------------------------------------------------------------
    def step(self, name: str) -> Step:
        """The step called ``name``; a :class:`PipelineGraphError` if there is none."""
        try:
            return self.steps[name]
        except KeyError:
            raise self._error(PipelineGraphError(f"no step named {name!r}")) from None

    def upstream(self) -> dict[str, set[str]]:
        """Each step's direct upstream steps, by name. Call :meth:`validate` first for clear errors."""
        if self._upstream is None:
            upstream: dict[str, set[str]] = {name: set() for name in self.steps}
            for step in self.steps.values():
                upstream[step.name].update(step.depends_on)
                for _, reference in step.references():
                    if isinstance(reference, (StepOutput, JsonGet)):
                        upstream[step.name].add(reference.step_name)
                if isinstance(step, ConditionStep):
                    for branch_step in step.if_steps + step.else_steps:
                        upstream.setdefault(branch_step, set()).add(step.name)
            self._upstream = upstream
        return self._upstream

    def topological_order(self) -> list[str]:
        """Step names, each after all its upstream steps (stable for the same pipeline)."""
        if self._order is not None:
            return list(self._order)
        sorter = graphlib.TopologicalSorter({name: sorted(deps) for name, deps in self.upstream().items()})
        try:
            self._order = list(sorter.static_order())
            return list(self._order)
        except graphlib.CycleError as error:
            cycle = error.args[1]
            raise self._error(
                PipelineGraphError(f"the steps form a cycle: {' -> '.join(cycle)}", step=cycle[0])
            ) from None

    def data_reads(self) -> dict[str, dict[str, set[str]]]:
        """For each step, the upstream steps it reads data from, and which of their outputs.

        A ``JsonGet`` reads the output that holds its property file. A step that reads data from a
        step that did not run is skipped, unlike a step that only comes after it (``depends_on``).
        """
        reads: dict[str, dict[str, set[str]]] = {name: {} for name in self.steps}
        for step in self.steps.values():
            for _, reference in step.references():
                if isinstance(reference, StepOutput):
                    output = reference.output_name
                elif isinstance(reference, JsonGet):
                    producer = self.steps.get(reference.step_name)
                    files = {item.name: item for item in producer.property_files()} if producer else {}
                    if reference.property_file not in files:
                        continue
                    output = files[reference.property_file].output_name
                else:
                    continue
                reads[step.name].setdefault(reference.step_name, set()).add(output)
        return reads

    def branch_owner(self) -> dict[str, tuple[str, str]]:
        """Each step inside a condition branch: (condition step, "if" or "else")."""
        owners: dict[str, tuple[str, str]] = {}
        for step in self.steps.values():
            if isinstance(step, ConditionStep):
                for branch, names in (("if", step.if_steps), ("else", step.else_steps)):
                    for name in names:
                        owners[name] = (step.name, branch)
        return owners

    def cache_config_of(self, step: Step) -> CacheConfig | None:
        """The caching that applies to ``step``: its own, else the pipeline's (for kinds that can be
        cached); None when caching is off for it."""
        config = step.cache_config
        if config is None and step.kind in CACHEABLE_KINDS:
            config = self.cache_config
        return config if config is not None and config.enable_caching else None

    # -- checks (their parts: PipelineChecks) ---------------------------------------------
    def validate(self, *, check_files: bool = True) -> Pipeline:
        """Check names, references, branches, cycles and script files; raise the first problem found.

        :param check_files: whether script files must exist (off when only the shape matters).
        """
        if not self.steps:
            raise self._error(SpecError("a pipeline needs at least one step", field="steps"))
        conditions = self._branch_conditions()
        for step in self.steps.values():
            self._validate_step(step, check_files=check_files, conditions=conditions)
        self._validate_control_flow()
        self.topological_order()
        return self

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], *, check_files: bool = True) -> Pipeline:
        """Load a YAML spec (``*.pipeline.yaml``) as a validated pipeline.

        :param path: the spec; relative script and data paths in it start from its folder.
        :param check_files: whether script files must exist.
        :raises SpecError: naming the file, the step, the field and the line of the first problem.
        """
        from airflow_provider_mlpipe.spec import load_pipeline_file

        return load_pipeline_file(path, check_files=check_files)

    # -- run time --------------------------------------------------------------------------
    def resolve_parameters(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validated run-time values of all parameters (defaults for those not given)."""
        return resolve_parameters(self.parameters, given or {})

    def step_digests(self) -> dict[str, str]:
        """Each step's definition digest (definition plus code file contents)."""
        return {name: step.digest() for name, step in self.steps.items()}

    def definition(self) -> str:
        """The pipeline as canonical JSON (parameters, steps in order with their dependencies and
        digests), the same for the same pipeline in every process: for review and diffs."""
        from airflow_provider_mlpipe.model.definition import pipeline_definition

        return pipeline_definition(self)

    # -- executions (the client imports Airflow; the model itself does not) -------------------
    def start(
        self,
        parameters: Mapping[str, Any] | None = None,
        selective_execution_config: SelectiveExecutionConfig | None = None,
        *,
        session: ExecutionsSession | None = None,
        note: str | None = None,
        run_id: str | None = None,
        no_cache: bool = False,
    ) -> PipelineExecution:
        """Start an execution, as SageMaker's ``Pipeline.start``.

        :param parameters: values for the pipeline's parameters (for a selective run: overrides of
            the reference run's values).
        :param selective_execution_config: run only some steps, reusing a reference run for the rest.
        :param session: where to run (default: the REST API if ``[mlpipe] api_url`` is set, else local).
        :param note: a note shown on the run in the Airflow UI.
        :param run_id: the execution's Airflow run id (default: a new unique one). On a running Airflow,
            a start that is sent again with the same id and request gives the same execution.
        :param no_cache: ignore the step cache: every step with caching on runs, and its new outputs
            replace the cache entry.
        """
        from airflow_provider_mlpipe.client import default_session
        from airflow_provider_mlpipe.client.executions import PipelineExecution

        session = session or default_session()
        execution_id = session.start(
            self,
            parameters=parameters,
            selective_execution_config=selective_execution_config,
            note=note,
            run_id=run_id,
            no_cache=no_cache,
        )
        return PipelineExecution(session, self.name, execution_id, artifact_store=self.artifact_store)

    def list_executions(
        self,
        *,
        session: ExecutionsSession | None = None,
        limit: int = 20,
        status: str | Sequence[str] | None = None,
        since: datetime | str | None = None,
    ) -> list[PipelineExecution]:
        """The pipeline's executions, newest first (none if it never ran where ``session`` looks).

        :param limit: at most this many (1 to 1000).
        :param status: only executions in this status (``queued``, ``running``, ``success``, ``failed``),
            or in any of these.
        :param since: only executions started (or queued to start) at or after this time: a datetime
            (naive means UTC), ISO text, or a time ago (``30m``, ``12h``, ``7d``).
        """
        from airflow_provider_mlpipe.client import default_session
        from airflow_provider_mlpipe.client.executions import PipelineExecution
        from airflow_provider_mlpipe.exceptions import PipelineNotFoundError

        session = session or default_session()
        try:
            descriptions = session.list_executions(self.name, limit=limit, status=status, since=since)
        except PipelineNotFoundError:  # this pipeline exists: it just never ran there
            return []
        return [
            PipelineExecution(
                session, self.name, description.execution_id, artifact_store=self.artifact_store
            )
            for description in descriptions
        ]

    def execution(self, execution_id: str, *, session: ExecutionsSession | None = None) -> PipelineExecution:
        """The execution ``execution_id`` (an Airflow run id) of this pipeline."""
        from airflow_provider_mlpipe.client import default_session
        from airflow_provider_mlpipe.client.executions import PipelineExecution

        return PipelineExecution(
            session or default_session(), self.name, execution_id, artifact_store=self.artifact_store
        )

    def to_dag(self, **dag_kwargs: Any) -> DAG:
        """Build the Airflow DAG (imports Airflow; see :mod:`airflow_provider_mlpipe.factory`)."""
        from airflow_provider_mlpipe.factory import build_dag

        return build_dag(self, **dag_kwargs)

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={list(self.steps)!r})"


def _with_unrolled_loops(steps: list[Step]) -> list[Step]:
    """The steps, each loop preceded by the steps of its iterations (see :mod:`~.loops`)."""
    from airflow_provider_mlpipe.model.loops import LoopStep

    expanded: list[Step] = []
    for step in steps:
        if isinstance(step, LoopStep):
            expanded.extend(step.unroll())
        expanded.append(step)
    return expanded


def _collect_steps(steps: Iterable[Step]) -> list[Step]:
    """The given steps plus those they name (branches, depends_on), each once, in a stable order."""
    ordered: list[Step] = []
    seen: set[int] = set()
    pending = list(steps)
    while pending:
        step = pending.pop(0)
        producer = getattr(step, "producer", None)  # a @step function's result stands for its step
        if isinstance(producer, Step):
            step = producer
        if not isinstance(step, Step):
            raise SpecError(f"expected a step, got {step!r}", field="steps")
        if id(step) in seen:
            continue
        seen.add(id(step))
        ordered.append(step)
        pending.extend(step.related_steps())
    return ordered
