"""The ``mlpipe`` command: validate specs, list pipelines, run or start them (all steps or chosen
ones), follow executions, manage the model registry and the step cache, query lineage.

Heavy imports (Airflow) happen inside the commands that need them, so ``mlpipe validate`` is quick.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.cli.executions import add_commands as add_execution_commands
from airflow_provider_mlpipe.cli.executions import dags_folder, quiet_airflow_logs
from airflow_provider_mlpipe.cli.output import format_table
from airflow_provider_mlpipe.cli.store_commands import add_commands as add_store_commands
from airflow_provider_mlpipe.exceptions import MlpipeError


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


def command_definition(args: argparse.Namespace) -> int:
    """Print a pipeline's canonical JSON definition (a spec file, or a pipeline of the dags folder)."""
    from airflow_provider_mlpipe.discovery import find_pipeline, load_pipelines_from_file

    target = Path(args.pipeline)
    if target.suffix in (".yaml", ".yml", ".py") and target.is_file():
        pipelines = load_pipelines_from_file(target)
        if len(pipelines) != 1:
            raise MlpipeError(f"{target}: expected one pipeline, found {len(pipelines)}")
        pipeline = pipelines[0]
    else:
        pipeline = find_pipeline(dags_folder(args.dags_folder), args.pipeline)
    sys.stdout.write(pipeline.definition())
    return 0


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
    parser.add_argument("-v", "--verbose", action="store_true", help="show Airflow's own logs too")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check pipeline specs (YAML or Python)")
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    validate.set_defaults(handler=command_validate)

    listing = commands.add_parser("list", help="list the pipelines in the dags folder")
    listing.add_argument("--dags-folder")
    listing.set_defaults(handler=command_list)

    definition = commands.add_parser(
        "definition", help="print a pipeline as canonical JSON (steps, parameters, dependencies, digests)"
    )
    definition.add_argument("pipeline", help="a pipeline of the dags folder, or a spec file")
    definition.add_argument("--dags-folder")
    definition.set_defaults(handler=command_definition)

    add_execution_commands(commands)

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
    add_store_commands(commands)
    return parser


# The exit code of a command whose reader went away (``mlpipe ... | head -1``), as a shell reports it.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_airflow_logs(args.verbose)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
        return code
    except MlpipeError as error:
        print(f"mlpipe: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader has all it wanted. Point stdout at /dev/null so that Python's own flush at exit
        # does not fail again and print a traceback (see the ``signal`` module's documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
