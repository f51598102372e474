"""The DAG factory: a :class:`~airflow_provider_mlpipe.model.Pipeline` becomes an Airflow DAG.

One task per step, dependencies from the pipeline graph, parameters as typed ``Param``s so that the
trigger form shows and validates them. :func:`load_pipeline_dags` turns every ``*.pipeline.yaml`` in
a folder into a DAG; a broken spec becomes an import error for that file only.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_parsing_context

from airflow_provider_mlpipe.exceptions import MlpipeError, SpecError
from airflow_provider_mlpipe.model.pipeline import Pipeline
from airflow_provider_mlpipe.operators import operator_class

log = logging.getLogger(__name__)

MLPIPE_TAG = "mlpipe"


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
    """Build the DAG of ``pipeline``: one task per step, named after the step.

    :param pipeline: the pipeline model.
    :param validate: check the pipeline first (references, cycles, script files).
    :param dag_kwargs: passed to ``DAG`` (e.g. ``schedule``, ``start_date``, ``default_args``).
    """
    if validate:
        pipeline.validate()
    dag_kwargs.setdefault("schedule", None)
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("max_active_runs", 16)
    dag = DAG(
        dag_id=pipeline.name,
        description=pipeline.description,
        params=pipeline_params(pipeline),
        tags=sorted({MLPIPE_TAG, *pipeline.tags}),
        doc_md=_doc(pipeline),
        **dag_kwargs,
    )
    upstream = pipeline.upstream()
    tasks = {}
    for name in pipeline.topological_order():
        step = pipeline.steps[name]
        tasks[name] = operator_class(step.kind)(pipeline=pipeline, step=step, dag=dag)
    for name, dependencies in upstream.items():
        for dependency in sorted(dependencies):
            tasks[dependency] >> tasks[name]
    return dag


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
    is reported as an import error of that spec file; the others still load.

    :param namespace: where to put the DAGs (the calling module's globals, so Airflow finds them).
    :param folder: the folder to scan; default the calling file's folder.
    """
    from airflow_provider_mlpipe.spec import discover_spec_files, load_pipeline_file, peek_pipeline_name

    caller_file = inspect.stack(context=0)[1].filename
    folder = Path(folder) if folder is not None else Path(caller_file).parent
    wanted = get_parsing_context().dag_id
    dags: dict[str, DAG] = {}
    sources: dict[str, Path] = {}
    for path in discover_spec_files(folder):
        if wanted is not None and peek_pipeline_name(path) not in (wanted, None):
            continue  # a worker running one task of another DAG: skip the work
        try:
            pipeline = load_pipeline_file(path)
            if pipeline.name in dags:
                raise SpecError(
                    f"pipeline name {pipeline.name!r} is already used by {sources[pipeline.name]}",
                    file=str(path),
                    field="name",
                )
            dag = build_dag(pipeline, validate=False)
        except MlpipeError as error:
            report_spec_error(path, error, loader_file=caller_file)
            continue
        except Exception as error:  # a bug or an odd spec must not hide the other pipelines
            report_spec_error(path, error, loader_file=caller_file)
            continue
        dags[pipeline.name] = dag
        sources[pipeline.name] = path
    if namespace is not None:
        for dag_id, dag in dags.items():
            namespace[f"mlpipe_dag__{dag_id}"] = dag
    return dags


def report_spec_error(path: Path, error: BaseException, *, loader_file: str) -> None:
    """Record ``error`` as an import error of the spec file ``path``.

    Airflow 3.3 collects import errors in the ``DagImportResult`` of the file being parsed (the
    loader ``.py``); an error added there under the spec's own path shows in the UI and in
    ``airflow dags list-import-errors`` as that file's error while the loader's DAGs still load.
    Outside the DAG processor (a plain import), the error is logged and issued as a warning.
    """
    message = f"{type(error).__name__}: {error}" if not isinstance(error, MlpipeError) else str(error)
    log.error("Pipeline spec %s not loaded: %s", path, message)
    result = _current_import_result()
    if result is not None:
        from airflow.dag_processing.importers.base import DagImportError

        loader_relative = Path(result.file_path)
        spec_relative = loader_relative.parent / os.path.relpath(path, Path(loader_file).parent)
        result.errors.append(
            DagImportError(
                file_path=os.path.normpath(spec_relative),
                message=message,
                error_type="mlpipe-spec",
                line_number=getattr(error, "line", None),
            )
        )
    else:
        warnings.warn(f"pipeline spec {path} not loaded: {message}", stacklevel=3)


def _current_import_result() -> Any:
    """The ``DagImportResult`` of the file Airflow is importing right now, if any."""
    try:
        from airflow.dag_processing.importers.base import DagImportResult
    except ImportError:  # a worker with the Task SDK only: nothing to report to
        return None
    frame = inspect.currentframe()
    while frame is not None:
        candidate = frame.f_locals.get("result")
        if isinstance(candidate, DagImportResult):
            return candidate
        frame = frame.f_back
    return None
