"""``mlpipe run`` (local), ``mlpipe start`` (a running Airflow) and ``mlpipe executions ...``.

All of them go through the executions API (:mod:`airflow_provider_mlpipe.client`), so the command
line and Python see the same executions and the same errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.cli.output import execution_lines, failure_lines, format_table, steps_table
from airflow_provider_mlpipe.exceptions import MlpipeError, ParameterValidationError, PipelineNotFoundError

if TYPE_CHECKING:
    from airflow_provider_mlpipe.client.executions import ExecutionsSession
    from airflow_provider_mlpipe.model.pipeline import Pipeline
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig


def dags_folder(option: str | None) -> Path:
    """``--dags-folder``, else Airflow's ``[core] dags_folder``."""
    if option:
        return Path(option).expanduser().resolve()
    configured = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if not configured:
        from airflow.configuration import conf

        configured = conf.get("core", "dags_folder")
    return Path(configured).expanduser().resolve()


def parse_param_options(pipeline: Pipeline | None, options: Sequence[str]) -> dict[str, Any]:
    """``["MaxDepth=8", ...]`` -> typed values, checked against the pipeline's parameters.

    Without the pipeline's definition (``mlpipe start`` on a machine without the dags folder), values
    are read as JSON where they parse (``8`` -> 8, ``true`` -> True) and as text otherwise; the server
    checks them against the pipeline's typed params.
    """
    values: dict[str, Any] = {}
    for option in options:
        name, separator, text = option.partition("=")
        if not separator or not name:
            raise ParameterValidationError(f"--param {option!r}: expected NAME=VALUE")
        if pipeline is None:
            try:
                values[name] = json.loads(text)
            except ValueError:
                values[name] = text
            continue
        parameter = pipeline.parameters.get(name)
        if parameter is None:
            known = ", ".join(pipeline.parameters) or "none"
            raise ParameterValidationError(f"unknown parameter {name!r}; the pipeline has: {known}")
        values[name] = parameter.parse_text(text)
    return values


def selective_config(args: argparse.Namespace) -> SelectiveExecutionConfig | None:
    """``--select A,B [--from-run RUN] [--include-between]`` as a config; None without ``--select``."""
    from airflow_provider_mlpipe.selective.model import SelectiveExecutionConfig

    if args.select is None:
        if args.from_run or args.include_between:
            raise MlpipeError("--from-run and --include-between need --select")
        return None
    return SelectiveExecutionConfig(args.select, args.from_run, args.include_between)


def added_between(pipeline: Pipeline | None, config: SelectiveExecutionConfig | None) -> list[str]:
    """The steps ``--include-between`` adds to the selection, in the pipeline's order (none without it,
    or without the pipeline's definition)."""
    from airflow_provider_mlpipe.selective.plan import steps_between

    if pipeline is None or config is None or not config.include_between:
        return []
    selected = [name for name in config.selected_steps if name in pipeline.steps]
    between = steps_between(pipeline.upstream(), selected)
    return [name for name in pipeline.topological_order() if name in between]


def _report(session: ExecutionsSession, pipeline_name: str, execution_id: str) -> str:
    """Print the steps, why those that failed failed, and the outcome of an execution; return its status."""
    steps = session.list_steps(pipeline_name, execution_id)
    description = session.describe(pipeline_name, execution_id)
    print(steps_table(steps))
    details = failure_lines(steps)
    if description.status == "failed" and not details and description.failure_reason:
        details = [f"Failed: {description.failure_reason}"]  # no step failed: a stop, a refusal
    if details:
        print()
        print("\n".join(details))
    print(f"Execution {execution_id}: {description.status}")
    return description.status


def command_run(args: argparse.Namespace) -> int:
    """Run a pipeline (or some of its steps) in this process on the embedded DB."""
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.discovery import find_pipeline

    pipeline = find_pipeline(dags_folder(args.dags_folder), args.pipeline)
    parameters = parse_param_options(pipeline, args.param or [])
    config = selective_config(args)
    what = f"steps {', '.join(config.selected_steps)} of" if config else "pipeline"
    print(f"Running {what} {pipeline.name!r} locally; parameters given: {json.dumps(parameters)}")
    print_added_between(added_between(pipeline, config))

    def progress(step: str, state: str, duration: float | None) -> None:
        if not step.startswith("_"):  # the provider's internal tasks are not steps
            print(f"  {step}: {state}" + (f" ({duration:.1f}s)" if duration is not None else ""), flush=True)

    session = LocalSession(on_task_done=progress, verbose=args.verbose)
    execution_id = session.start(
        pipeline,
        parameters=parameters,
        selective_execution_config=config,
        note=args.note,
        no_cache=args.no_cache,
    )
    return 0 if _report(session, pipeline.name, execution_id) == "success" else 1


def print_added_between(steps: Sequence[str]) -> None:
    if steps:
        print(f"--include-between added the steps between the selected ones: {', '.join(steps)}")


def _remote_session(args: argparse.Namespace) -> ExecutionsSession:
    from airflow_provider_mlpipe.client.rest import AirflowSession

    return AirflowSession(args.api_url)


def command_start(args: argparse.Namespace) -> int:
    """Start an execution on a running Airflow (REST API); with ``--wait``, follow it to the end."""
    from airflow_provider_mlpipe.client.executions import PipelineExecution, paused_message
    from airflow_provider_mlpipe.discovery import find_pipeline

    pipeline: Pipeline | None
    try:
        pipeline = find_pipeline(dags_folder(args.dags_folder), args.pipeline)
    except MlpipeError:
        pipeline = None  # the server knows the pipeline; values are checked there
    parameters = parse_param_options(pipeline, args.param or [])
    config = selective_config(args)
    session = _remote_session(args)
    execution_id = session.start(
        pipeline or args.pipeline,  # type: ignore[arg-type]
        parameters=parameters,
        selective_execution_config=config,
        note=args.note,
        run_id=args.run_id,
        no_cache=args.no_cache,
    )
    print(f"Started execution {execution_id} of {args.pipeline!r}")
    if not args.wait and session.is_paused(args.pipeline):
        print(f"Note: {paused_message(args.pipeline, execution_id)}", file=sys.stderr)
    if config is not None and config.include_between:
        # Without the definition here, the server's plan says which steps it selected.
        added = added_between(pipeline, config)
        if pipeline is None:
            block = session.describe(args.pipeline, execution_id).selective_execution or {}
            added = [name for name in block.get("selected_steps", []) if name not in config.selected_steps]
        print_added_between(added)
    if not args.wait:
        return 0
    PipelineExecution(session, args.pipeline, execution_id).wait(poll=args.poll, timeout=args.timeout)
    return 0 if _report(session, args.pipeline, execution_id) == "success" else 1


def _session(args: argparse.Namespace) -> ExecutionsSession:
    """``--api-url``: that Airflow; ``--local``: the embedded DB; neither: the configured default."""
    from airflow_provider_mlpipe.client.local import LocalSession
    from airflow_provider_mlpipe.settings import default_api_url

    if args.local or not (args.api_url or default_api_url()):
        return LocalSession(verbose=args.verbose)
    return _remote_session(args)


def command_executions_list(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.client.local import LocalSession

    session = _session(args)
    try:
        descriptions = session.list_executions(
            args.pipeline, limit=args.limit, status=args.status, since=args.since
        )
    except PipelineNotFoundError:
        # A pipeline of the dags folder that never ran in local mode has no executions yet.
        if not isinstance(session, LocalSession) or not _in_dags_folder(args.pipeline):
            raise
        descriptions = []
    rows = [
        (
            d.execution_id,
            d.status,
            d.start_time.strftime("%Y-%m-%d %H:%M:%S") if d.start_time else "-",
            d.end_time.strftime("%Y-%m-%d %H:%M:%S") if d.end_time else "-",
            "selective: " + ",".join(d.selective_execution.get("selected_steps", []))
            if d.selective_execution
            else "full",
        )
        for d in descriptions
    ]
    print(format_table(["execution", "status", "started", "ended", "kind"], rows))
    return 0


def _in_dags_folder(name: str) -> bool:
    from airflow_provider_mlpipe.discovery import find_sources

    try:
        return any(source.name == name for source in find_sources(dags_folder(None)))
    except OSError:
        return False


def command_executions_describe(args: argparse.Namespace) -> int:
    print("\n".join(execution_lines(_session(args).describe(args.pipeline, args.execution_id))))
    return 0


def command_executions_steps(args: argparse.Namespace) -> int:
    steps = _session(args).list_steps(args.pipeline, args.execution_id)
    print(steps_table(steps))
    details = failure_lines(steps)
    if details:
        print()
        print("\n".join(details))
    return 0


def command_executions_stop(args: argparse.Namespace) -> int:
    """Stop a running execution (it ends as failed); a finished one is left as it is."""
    session = _session(args)
    before = session.describe(args.pipeline, args.execution_id)
    if before.status in ("success", "failed"):
        print(
            f"Execution {args.execution_id} of {args.pipeline!r} already finished ({before.status}); not stopped"
        )
        return 0
    session.stop(args.pipeline, args.execution_id)
    after = session.describe(args.pipeline, args.execution_id)
    print(f"Stopped execution {args.execution_id} of {args.pipeline!r}: {after.status}")
    return 0


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="a parameter value")
    parser.add_argument(
        "--select", metavar="STEP,STEP", help="run only these steps, reuse a run for the rest"
    )
    parser.add_argument(
        "--from-run", metavar="RUN_ID", help="the run to reuse (default: the latest finished)"
    )
    parser.add_argument(
        "--include-between", action="store_true", help="also run the steps between the selected ones"
    )
    parser.add_argument("--note", help="a note for the run, shown in the Airflow UI")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="ignore the step cache: every step with caching on runs (and refreshes its entry)",
    )
    parser.add_argument("--dags-folder", help="where the pipeline specs are (default: Airflow's dags folder)")


def add_commands(commands: Any) -> None:
    """Add ``run``, ``start`` and ``executions`` to the ``mlpipe`` parser."""
    run = commands.add_parser("run", help="run a pipeline (or chosen steps) locally on the embedded DB")
    run.add_argument("pipeline")
    add_selection_options(run)
    run.set_defaults(handler=command_run)

    start = commands.add_parser("start", help="start a pipeline (or chosen steps) on a running Airflow")
    start.add_argument("pipeline")
    add_selection_options(start)
    start.add_argument("--api-url", help="the api-server (default: [mlpipe] api_url)")
    start.add_argument("--wait", action="store_true", help="wait for the execution and print its steps")
    start.add_argument(
        "--run-id",
        help="the new run's id (default: a new one); starting again with it never makes a second run",
    )
    start.add_argument("--poll", type=float, default=2.0, help="seconds between checks with --wait")
    start.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    start.set_defaults(handler=command_start)

    executions = commands.add_parser("executions", help="the executions of a pipeline")
    sub = executions.add_subparsers(dest="executions_command", required=True)
    for name, handler, needs_id in (
        ("list", command_executions_list, False),
        ("describe", command_executions_describe, True),
        ("steps", command_executions_steps, True),
        ("stop", command_executions_stop, True),
    ):
        parser = sub.add_parser(name)
        parser.add_argument("pipeline")
        if needs_id:
            parser.add_argument("execution_id")
        else:
            parser.add_argument("--limit", type=int, default=20)
            parser.add_argument(
                "--status", help="only these statuses: queued, running, success, failed (a,b)"
            )
            parser.add_argument(
                "--since", help="only executions since a date/time (ISO) or a time ago (30m, 12h, 7d)"
            )
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--api-url", help="a running Airflow (default: [mlpipe] api_url if set)")
        where.add_argument("--local", action="store_true", help="the embedded DB of $AIRFLOW_HOME")
        parser.set_defaults(handler=handler)


def quiet_airflow_logs(verbose: bool) -> None:
    """Keep deprecation notices of Airflow's dependencies out of the command's output unless asked (``-v``).

    Airflow's own logs are kept off the console by the local session (``LocalSession(verbose=...)``),
    not by lowering Airflow's logging level: the task log files must still get the INFO lines.
    """
    if verbose:
        return
    # Deprecation notices of Airflow's dependencies are for Airflow's developers, not for this output
    # (Starlette's are UserWarnings, hence the filter on the name).
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*is deprecated.*")
