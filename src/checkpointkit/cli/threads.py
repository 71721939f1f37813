"""``checkpointkit threads``: list a checkpointer's threads, newest first, filtered by metadata."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from checkpointkit.cli._app import App, positive_int
from checkpointkit.cli._output import print_table
from checkpointkit.inspect import list_threads, parse_filter

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``threads`` command."""
    p = commands.add_parser(
        "threads",
        parents=[common],
        help="list threads: id, checkpoints, created/updated, metadata",
        description="List the threads of a checkpointer, newest first. A filter keeps "
        "threads whose latest checkpoint's metadata has key=value (a JSON value, or a "
        "string: source=loop, step=3, user='\"42\"').",
    )
    p.add_argument("url", metavar="URL", help="the checkpointer's URL")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata filter (repeat to require several)",
    )
    p.add_argument("--limit", type=positive_int, metavar="N", help="show at most N threads")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, app: App) -> int:
    """List the threads."""
    wanted = parse_filter(args.filter)
    with app.open(args.url) as saver:
        infos = list_threads(saver, wanted, args.limit)
    if args.json:
        app.print_json([dataclasses.asdict(i) for i in infos])
        return 0
    if not infos:
        app.echo("no threads" + (" match the filter" if wanted else ""))
        return 0
    rows = [
        (
            i.thread_id,
            i.checkpoint_count,
            i.created_at,
            i.updated_at,
            json.dumps(i.metadata, ensure_ascii=False, default=str),
        )
        for i in infos
    ]
    print_table(
        app.stdout,
        None,
        ("thread", "checkpoints", "created", "updated", "metadata"),
        rows,
        no_wrap=("thread", "created", "updated"),
    )
    return 0
