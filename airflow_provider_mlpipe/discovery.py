"""Find the pipelines in a dags folder: YAML specs and Python files that define a ``Pipeline``."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_mlpipe.exceptions import MlpipeError, SpecError
from airflow_provider_mlpipe.model.pipeline import Pipeline

# Python files are only imported when they mention the provider: importing every DAG file of a
# large dags folder to list pipelines would be slow and could have side effects.
PYTHON_MARKER = "airflow_provider_mlpipe"


@dataclass
class PipelineSource:
    """Where a pipeline is defined.

    :param name: the pipeline (and DAG) name, if it could be read.
    :param path: the YAML spec or Python file.
    :param error: why it could not be loaded, if it could not.
    """

    name: str | None
    path: Path
    error: str | None = None


def load_pipelines_from_python(path: Path) -> list[Pipeline]:
    """Import a Python file and return the ``Pipeline`` objects defined at its top level."""
    module_name = "mlpipe_discovered_" + "".join(c if c.isalnum() else "_" for c in str(path.resolve()))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpecError("cannot import this file", file=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except MlpipeError as error:
        if isinstance(error, SpecError) and error.file:
            raise
        raise SpecError(str(error), file=str(path)) from None
    except Exception as error:
        raise SpecError(f"{type(error).__name__}: {error}", file=str(path)) from error
    return [value for value in vars(module).values() if isinstance(value, Pipeline)]


def load_pipelines_from_file(path: Path, *, check_files: bool = True) -> list[Pipeline]:
    """The pipelines defined in a YAML spec or a Python file."""
    from airflow_provider_mlpipe.spec import load_pipeline_file

    if path.suffix == ".py":
        pipelines = load_pipelines_from_python(path)
        for pipeline in pipelines:
            pipeline.validate(check_files=check_files)
        return pipelines
    return [load_pipeline_file(path, check_files=check_files)]


def find_sources(dags_folder: Path) -> list[PipelineSource]:
    """Every pipeline in ``dags_folder`` (names of YAML specs are read without a full parse)."""
    from airflow_provider_mlpipe.spec import discover_spec_files, peek_pipeline_name

    sources = [PipelineSource(peek_pipeline_name(path), path) for path in discover_spec_files(dags_folder)]
    for path in sorted(dags_folder.rglob("*.py")):
        if any(part.startswith((".", "__")) for part in path.relative_to(dags_folder).parts):
            continue
        text = path.read_text(errors="replace")
        if PYTHON_MARKER not in text or "load_pipeline_dags" in text:
            continue
        try:
            sources += [PipelineSource(p.name, path) for p in load_pipelines_from_python(path)]
        except MlpipeError as error:
            sources.append(PipelineSource(None, path, str(error)))
    return sources


def find_pipeline(dags_folder: Path, name: str) -> Pipeline:
    """Load the pipeline called ``name`` from ``dags_folder``; a clear error if there is none."""
    from airflow_provider_mlpipe.spec import load_pipeline_file

    sources = find_sources(dags_folder)
    for source in sources:
        if source.name != name:
            continue
        if source.path.suffix == ".py":
            for pipeline in load_pipelines_from_python(source.path):
                if pipeline.name == name:
                    return pipeline.validate()
        return load_pipeline_file(source.path)
    known = ", ".join(sorted({s.name for s in sources if s.name})) or "none"
    raise MlpipeError(f"no pipeline named {name!r} in {dags_folder} (known: {known})")
