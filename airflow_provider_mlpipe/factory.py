"""The DAG factory: a :class:`~airflow_provider_mlpipe.model.Pipeline` becomes an Airflow DAG.

One task per step, dependencies from the pipeline graph, parameters as typed ``Param``s so that the
trigger form shows and validates them. :func:`load_pipeline_dags` turns every ``*.pipeline.yaml`` in
a folder into a DAG; a broken spec becomes an import error for that file only.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import MutableMapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_parsing_context

from airflow_provider_mlpipe.exceptions import MlpipeError, SpecError
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.model.steps import Step
from airflow_provider_mlpipe.operators import operator_class
from airflow_provider_mlpipe.operators.outcome import MlpipeOutcomeOperator
from airflow_provider_mlpipe.selective.manifest import edge_label

log = logging.getLogger(__name__)

MLPIPE_TAG = "mlpipe"
DEFAULT_MAX_ACTIVE_RUNS = 16
# The start of a scheduled pipeline's timetable; with catchup off, only runs from now on are made.
SCHEDULE_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def pipeline_params(pipeline: Pipeline) -> dict[str, Param]:
    """The pipeline's parameters as Airflow ``Param``s (typed, with choices and description)."""
    params = {}
    for name, parameter in pipeline.parameters.items():
        schema = parameter.json_schema()
        kwargs: dict[str, Any] = {"description": parameter.description or f"{parameter.type_name} parameter"}
        if parameter.required:
            params[name] = Param(**schema, **kwargs)
        else:
            params[name] = Param(parameter.default_value, **schema, **kwargs)
    return params


def build_dag(pipeline: Pipeline, *, validate: bool = True, **dag_kwargs: Any) -> DAG:
    """Build the DAG of ``pipeline``: one task per step, named after the step, and the outcome task.

    Edges are labelled with what they carry (the outputs read, or the condition branch), which both
    the graph view shows and selective runs read back (see :mod:`~airflow_provider_mlpipe.selective.manifest`).

    :param pipeline: the pipeline model.
    :param validate: check the pipeline first (references, cycles, script files).
    :param dag_kwargs: passed to ``DAG`` (e.g. ``schedule``, ``start_date``, ``default_args``).
    """
    if validate:
        pipeline.validate()
    dag_kwargs.setdefault("schedule", pipeline.schedule)
    if pipeline.schedule is not None:
        # A schedule needs a start; runs before the DAG existed are not made up (no catchup).
        dag_kwargs.setdefault("start_date", SCHEDULE_START)
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("max_active_runs", pipeline.max_concurrent_executions or DEFAULT_MAX_ACTIVE_RUNS)
    if pipeline.parallelism_config is not None:
        dag_kwargs.setdefault("max_active_tasks", pipeline.parallelism_config.max_parallel_execution_steps)
    dag = DAG(
        dag_id=pipeline.name,
        description=pipeline.description,
        params=pipeline_params(pipeline),
        tags=sorted({MLPIPE_TAG, *pipeline.tags}),
        doc_md=_doc(pipeline),
        **dag_kwargs,
    )
    upstream = pipeline.upstream()
    reads = pipeline.data_reads()
    branch_of = pipeline.branch_owner()
    tasks = {}
    # A fan-out step's first task (its items), which its upstream steps precede.
    entries = {}
    for name in pipeline.topological_order():
        step = pipeline.steps[name]
        kind = step.operator_kind or ("fan_out" if step.for_each is not None else step.kind)
        tasks[name] = operator_class(kind)(pipeline=pipeline, step=step, dag=dag)
        entries[name] = _fan_out_tasks(pipeline, step, tasks[name], dag) if step.is_fan_out else tasks[name]
    for name, dependencies in upstream.items():
        for dependency in sorted(dependencies):
            tasks[dependency] >> tasks[name]
            if entries[name] is not tasks[name]:
                tasks[dependency] >> entries[name]
            owner = branch_of.get(name)
            branch = owner[1] if owner is not None and owner[0] == dependency else None
            label = edge_label(branch, reads[name].get(dependency, ()))
            if label is not None:
                dag.set_edge_info(dependency, name, {"label": label})
    outcome = MlpipeOutcomeOperator(dag=dag)
    list(tasks.values()) >> outcome
    return dag


def _fan_out_tasks(pipeline: Pipeline, step: Step, collect: Any, dag: DAG) -> Any:
    """The internal tasks of a fan-out step before its own task ``collect``: ``_<step>.items`` and the
    mapped ``_<step>.each`` (see :mod:`airflow_provider_mlpipe.model.fanout`); returns the first."""
    from airflow_provider_mlpipe.model.fanout import each_task_id
    from airflow_provider_mlpipe.operators import item_operator_class
    from airflow_provider_mlpipe.operators.fanout import MlpipeItemsOperator

    items = MlpipeItemsOperator(pipeline=pipeline, step=step, dag=dag)
    mapped_options: dict[str, Any] = {}
    if step.concurrency is not None:
        mapped_options["max_active_tis_per_dagrun"] = step.concurrency
    each = (
        item_operator_class(step.kind)
        .partial(
            task_id=each_task_id(step.name),
            task_display_name=f"{step.display_name or step.name}: each item",
            # The item names each mapped task instance in the UI.
            map_index_template="{{ task.mlpipe_item | tojson }}",
            pipeline=pipeline,
            step=step,
            dag=dag,
            **mapped_options,
        )
        .expand(mlpipe_item=items.output)
    )
    items >> each >> collect
    return items


def _doc(pipeline: Pipeline) -> str:
    lines = [f"### Pipeline `{pipeline.name}`", "", pipeline.description or ""]
    if pipeline.source_file:
        lines += ["", f"Spec: `{Path(pipeline.source_file).name}`"]
    if pipeline.parameters:
        lines += ["", "| parameter | type | default |", "|---|---|---|"]
        lines += [
            f"| {p.name} | {p.type_name} | {'(required)' if p.required else p.default_value!r} |"
            for p in pipeline.parameters.values()
        ]
    return "\n".join(lines)


def load_pipeline_dags(
    namespace: MutableMapping[str, Any] | None = None, folder: str | os.PathLike[str] | None = None
) -> dict[str, DAG]:
    """Build a DAG from every pipeline spec (``*.pipeline.yaml``) in ``folder``.

    Call it from a ``.py`` file in the dags folder with ``load_pipeline_dags(globals())``. When a
    worker parses the file to run one task, only that task's DAG is built. A spec that fails to load
    is reported as an import error of the calling file that names the spec, step, field and line;
    the other pipelines still load (see :class:`SpecErrorsDag`). The model of a spec that did not
    change since an earlier parse is taken from ``[mlpipe] parse_cache``, and so is its built DAG
    while its steps' code and literal inputs are unchanged (see
    :mod:`~airflow_provider_mlpipe.spec.parse_cache` and :mod:`~airflow_provider_mlpipe.dag_cache`);
    the steps' code digests are computed every time.

    :param namespace: where to put the DAGs (the calling module's globals, so Airflow finds them).
    :param folder: the folder to scan; default the folder of the module whose ``namespace`` this is.
    """
    from airflow_provider_mlpipe.dag_cache import DagCache
    from airflow_provider_mlpipe.fingerprint.code import remembered_lookups
    from airflow_provider_mlpipe.spec import discover_spec_files, load_pipeline_file, peek_pipeline_name
    from airflow_provider_mlpipe.spec.parse_cache import ParseCache

    if folder is None:
        if namespace is None or not namespace.get("__file__"):
            raise TypeError("load_pipeline_dags needs the calling module's globals() or a folder")
        folder = Path(str(namespace["__file__"])).parent
    folder = Path(folder)
    wanted = get_parsing_context().dag_id
    dags: dict[str, DAG] = {}
    sources: dict[str, Path] = {}
    errors: list[str] = []
    cache = ParseCache.configured()
    dag_cache = DagCache(cache) if cache is not None else None

    def build(path: Path) -> tuple[Pipeline, DAG]:
        pipeline = load_pipeline_file(path, cache=cache)
        return pipeline, build_dag(pipeline, validate=False)

    with remembered_lookups():
        for path in discover_spec_files(folder):
            if wanted is not None and peek_pipeline_name(path) not in (wanted, None):
                continue  # a worker running one task of another DAG: skip the work
            try:
                dag = build(path)[1] if dag_cache is None else dag_cache.load(path, partial(build, path))
                if dag.dag_id in dags:  # the first spec of that name keeps it
                    raise SpecError(
                        f"pipeline name {dag.dag_id!r} is already used by {sources[dag.dag_id]}",
                        file=str(path),
                        field="name",
                    )
            except Exception as error:  # a bug or an odd spec must not hide the other pipelines
                errors.append(spec_error_message(path, error))
                continue
            dags[dag.dag_id] = dag
            sources[dag.dag_id] = path
    if namespace is not None:
        for dag_id, dag in dags.items():
            namespace[f"mlpipe_dag__{dag_id}"] = dag
        if errors:
            namespace[SPEC_ERRORS_NAME] = SpecErrorsDag(folder, errors)
    return dags


def spec_error_message(path: Path, error: BaseException) -> str:
    """Log that the spec ``path`` was not loaded, issue a warning, and return the message."""
    message = str(error) if isinstance(error, MlpipeError) else f"{path}: {type(error).__name__}: {error}"
    log.error("Pipeline spec %s not loaded: %s", path, message)
    warnings.warn(f"pipeline spec {path} not loaded: {message}", stacklevel=3)
    return message


SPEC_ERRORS_NAME = "mlpipe_spec_errors"


class SpecErrorsDag(DAG):
    """Stands in the loader module for the specs that failed to load, so that Airflow reports them.

    Airflow validates each DAG a DAG file defines before it keeps it; a DAG that fails validation
    becomes an import error of that file, in the UI and in ``airflow dags list-import-errors``, while
    the file's other DAGs load as usual. This DAG's validation fails with every broken spec's message
    (file, step, field, line), and is cleared with the file's next clean parse.

    :param folder: the folder the specs were read from.
    :param messages: one message per spec that did not load.
    """

    def __init__(self, folder: Path, messages: list[str]) -> None:
        super().__init__(dag_id=SPEC_ERRORS_NAME, schedule=None, description=f"pipeline specs in {folder}")
        self.spec_messages = list(messages)

    def validate(self) -> None:
        count = len(self.spec_messages)
        raise SpecError(
            f"{count} pipeline spec{'s' if count > 1 else ''} not loaded:\n" + "\n".join(self.spec_messages)
        )
