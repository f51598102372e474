"""``mlpipe cache list|clear``, ``mlpipe store clean`` and ``mlpipe lineage``: what the artifact store
knows, read (and cleaned) without Airflow."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_mlpipe.cli.output import format_table


def _store(args: argparse.Namespace) -> Any:
    from airflow_provider_mlpipe.settings import artifact_store_at

    return artifact_store_at(args.store)


def command_cache_list(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.cache import StepCache

    rows = []
    for key, entry in StepCache(_store(args)).entries(args.pipeline, args.step):
        if entry is None:
            rows.append(("?", "?", key.rsplit("/", 1)[-1][:12], "-", "-", "unreadable entry (a miss)"))
            continue
        outputs = ", ".join(f"{name}={ref.get('digest', '')[7:19]}" for name, ref in entry.outputs.items())
        rows.append(
            (
                entry.pipeline,
                entry.step,
                entry.fingerprint.removeprefix("sha256:")[:12],
                entry.run_id,
                entry.created_at,
                outputs,
            )
        )
    print(format_table(["pipeline", "step", "fingerprint", "run", "stored", "outputs"], rows))
    return 0


def command_cache_clear(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.cache import StepCache

    count = StepCache(_store(args)).clear(args.pipeline, args.step)
    what = " ".join(
        part
        for part in (
            f"pipeline {args.pipeline}" if args.pipeline else "",
            f"step {args.step}" if args.step else "",
        )
        if part
    )
    print(
        f"Removed {count} cache entr{'y' if count == 1 else 'ies'}{' of ' + what if what else ''} (the artifacts stay)"
    )
    return 0


def time_before(text: str) -> datetime:
    """``--older-than``'s value as the time it names: ``30m``, ``12h``, ``7d`` ago, or a date."""
    from airflow_provider_mlpipe.client.filters import ExecutionFilterError, checked_since

    try:
        moment = checked_since(text)
    except ExecutionFilterError:
        moment = None
    if moment is None:
        raise argparse.ArgumentTypeError(f"a time ago (30m, 12h, 7d) or a date (2026-01-31), not {text!r}")
    return moment


def command_store_clean(args: argparse.Namespace) -> int:
    store = _store(args)
    removed = store.remove_unfinished_writes(args.older_than)
    for write in removed:
        started = f" (started {write.started.isoformat(timespec='seconds')})" if write.started else ""
        print(f"removed {write.where}{started}")
    print(
        f"Removed {len(removed)} unfinished write{'' if len(removed) == 1 else 's'} from {store.url} (no blob is touched)"
    )
    return 0


def command_lineage(args: argparse.Namespace) -> int:
    from airflow_provider_mlpipe.lineage.graph import DOWNSTREAM, UPSTREAM, LineageQuery
    from airflow_provider_mlpipe.lineage.render import RENDERERS

    direction = DOWNSTREAM if args.downstream else UPSTREAM
    graph = LineageQuery(_store(args)).query(args.identifier, direction)
    text = RENDERERS[args.format](graph)
    if args.output:
        Path(args.output).write_text(text)
        print(f"Wrote the {direction} lineage of {args.identifier} to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def add_commands(commands: Any) -> None:
    """Add ``cache``, ``store`` and ``lineage`` to the ``mlpipe`` parser."""
    cache = commands.add_parser("cache", help="the step cache")
    sub = cache.add_subparsers(dest="cache_command", required=True)
    for name, handler, help_text in (
        ("list", command_cache_list, "list cache entries"),
        ("clear", command_cache_clear, "remove cache entries (the artifacts stay)"),
    ):
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--pipeline", help="only this pipeline's entries")
        parser.add_argument("--step", help="only this step's entries")
        parser.add_argument("--store", help="artifact store URL (default: [mlpipe] artifact_store)")
        parser.set_defaults(handler=handler)

    store = commands.add_parser("store", help="the artifact store")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    clean = store_commands.add_parser(
        "clean",
        help="remove what killed writers left: unfinished S3 multipart uploads, local temp files",
    )
    clean.add_argument(
        "--older-than",
        type=time_before,
        default="1d",
        help="S3: abort only uploads started this long ago (30m, 12h, 7d) or before this date; default 1d. "
        "A live upload looks like an abandoned one: keep more than the longest upload",
    )
    clean.add_argument("--store", help="artifact store URL (default: [mlpipe] artifact_store)")
    clean.set_defaults(handler=command_store_clean)

    lineage = commands.add_parser(
        "lineage",
        help="what produced a model version or artifact (--upstream), or what used it (--downstream)",
    )
    lineage.add_argument("identifier", metavar="MODEL_GROUP:VERSION | ARTIFACT_DIGEST")
    direction = lineage.add_mutually_exclusive_group()
    direction.add_argument("--upstream", action="store_true", help="what produced it (the default)")
    direction.add_argument("--downstream", action="store_true", help="what used it")
    lineage.add_argument("--format", choices=["table", "json", "html", "svg"], default="table")
    lineage.add_argument("--output", "-o", help="write to this file instead of the console")
    lineage.add_argument("--store", help="artifact store URL (default: [mlpipe] artifact_store)")
    lineage.set_defaults(handler=command_lineage)
