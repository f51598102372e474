"""The ``mlpipe`` command: validate specs, list and run pipelines locally, manage the model registry.

Heavy imports (Airflow) happen inside the commands that need them, so ``mlpipe validate`` is quick.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.exceptions import MlpipeError, ParameterValidationError


def dags_folder(option: str | None) -> Path:
    """``--dags-folder``, else Airflow's ``[core] dags_folder``."""
    if option:
        return Path(option).expanduser().resolve()
    configured = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if not configured:
        from airflow.configuration import conf

        configured = conf.get("core", "dags_folder")
    return Path(configured).expanduser().resolve()


def parse_param_options(pipeline: Any, options: Sequence[str]) -> dict[str, Any]:
    """``["MaxDepth=8", ...]`` -> typed values, validated against the pipeline's parameters."""
    values: dict[str, Any] = {}
    for option in options:
        name, separator, text = option.partition("=")
        if not separator:
            raise ParameterValidationError(f"--param {option!r}: expected NAME=VALUE")
        parameter = pipeline.parameters.get(name)
        if parameter is None:
            known = ", ".join(pipeline.parameters) or "none"
            raise ParameterValidationError(f"unknown parameter {name!r}; the pipeline has: {known}")
        values[name] = parameter.parse_text(text)
    pipeline.resolve_parameters(values)
    return values


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _time(value: datetime | None) -> str:
    return value.strftime("%H:%M:%S") if value else "-"


def summarise_outputs(record: Any) -> str:
    """``train=directory:1a2b3c4d, ...`` from a step's XCom record."""
    if not isinstance(record, dict) or "outputs" not in record:
        return ""
    parts = []
    for name, ref in record["outputs"].items():
        digest = str(ref.get("digest", "")).removeprefix("sha256:")[:8]
        parts.append(f"{name}={ref.get('type')}:{digest}")
    metadata = record.get("metadata") or {}
    if "outcome" in metadata:
        parts.append(f"outcome={metadata['outcome']}")
    if "version" in metadata:
        parts.append(f"version={metadata['version']}")
    return ", ".join(parts)


# -- commands ------------------------------------------------------------------------------------
def command_validate(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.discovery import load_pipelines_from_file

    failures = 0
    for spec in args.specs:
        path = Path(spec)
        try:
            pipelines = load_pipelines_from_file(path)
            if not pipelines:
                raise MlpipeError(f"{path}: no Pipeline defined at the top level")
        except (MlpipeError, OSError) as error:
            print(f"ERROR {error}", file=sys.stderr)
            failures += 1
            continue
        for pipeline in pipelines:
            print(
                f"OK {path}: pipeline {pipeline.name!r}, {len(pipeline.steps)} steps, "
                f"{len(pipeline.parameters)} parameters"
            )
    return 1 if failures else 0


def command_list(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.discovery import find_sources

    folder = dags_folder(args.dags_folder)
    rows = [
        (source.name or "?", source.path.relative_to(folder), source.error or "ok")
        for source in find_sources(folder)
    ]
    print(format_table(["pipeline", "file", "status"], rows))
    return 0


def command_run(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.discovery import find_pipeline

    pipeline = find_pipeline(dags_folder(args.dags_folder), args.pipeline)
    conf = parse_param_options(pipeline, args.param or [])
    from airflow_provider_mlpipe.factory import build_dag
    from airflow_provider_mlpipe.local_runner import ensure_database, run_dag_locally

    ensure_database()
    dag = build_dag(pipeline)
    print(
        f"Running pipeline {pipeline.name!r} locally with parameters {json.dumps(pipeline.resolve_parameters(conf))}"
    )
    result = run_dag_locally(dag, conf=conf)
    rows = []
    for name in pipeline.topological_order():
        task = result.task(name)
        duration = f"{task.duration:.1f}s" if task.duration is not None else "-"
        rows.append(
            (
                name,
                task.state or "none",
                _time(task.start_date),
                _time(task.end_date),
                duration,
                summarise_outputs(task.return_value),
            )
        )
    print(format_table(["step", "status", "start", "end", "duration", "outputs"], rows))
    print(f"Execution {result.run_id}: {result.state}")
    return 0 if result.state == "success" else 1


def _registry(args: argparse.Namespace) -> Any:
    from airflow_provider_mlpipe.artifacts.registry import ModelRegistry
    from airflow_provider_mlpipe.artifacts.store import store_from_url
    from airflow_provider_mlpipe.settings import default_artifact_store_url

    return ModelRegistry(store_from_url(args.store or default_artifact_store_url()))


def command_models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    groups = [args.group] if args.group else registry.list_groups()
    rows = []
    for group in groups:
        for version in registry.list_versions(group):
            metrics = json.dumps(version.metrics, sort_keys=True)[:60] if version.metrics else ""
            rows.append((group, version.version, version.approval_status, version.created_at, metrics))
    print(format_table(["group", "version", "status", "created", "metrics"], rows))
    return 0


def _set_status(args: argparse.Namespace, status: str) -> int:
    version = _registry(args).set_status(args.group, args.version, status, description=args.description)
    print(f"{version.group} version {version.version}: {version.approval_status}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpipe", description="SageMaker-style ML pipelines on Apache Airflow"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check pipeline specs (YAML or Python)")
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    validate.set_defaults(handler=command_validate)

    listing = commands.add_parser("list", help="list the pipelines in the dags folder")
    listing.add_argument("--dags-folder")
    listing.set_defaults(handler=command_list)

    run = commands.add_parser("run", help="run a pipeline locally through Airflow (embedded SQLite DB)")
    run.add_argument("pipeline")
    run.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="override a parameter")
    run.add_argument("--dags-folder")
    run.set_defaults(handler=command_run)

    models = commands.add_parser("models", help="the model registry")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    for name, help_text in (
        ("list", "list model versions"),
        ("approve", "approve a version"),
        ("reject", "reject a version"),
    ):
        sub = models_commands.add_parser(name, help=help_text)
        sub.add_argument("--store", help="artifact store URL (default: [mlpipe] artifact_store)")
        if name == "list":
            sub.add_argument("group", nargs="?")
            sub.set_defaults(handler=command_models_list)
        else:
            sub.add_argument("group")
            sub.add_argument("version", type=int)
            sub.add_argument("--description")
            status = "Approved" if name == "approve" else "Rejected"
            sub.set_defaults(handler=lambda args, status=status: _set_status(args, status))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except MlpipeError as error:
        print(f"mlpipe: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
