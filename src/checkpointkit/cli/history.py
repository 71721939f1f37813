"""``checkpointkit history``: a thread's checkpoints as a table, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from checkpointkit.cli._app import App, positive_int
from checkpointkit.cli._output import print_table
from checkpointkit.inspect import HistoryRow, history

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``history`` command."""
    p = commands.add_parser(
        "history",
        parents=[common],
        help="a thread's checkpoints: step, source, node writes, next nodes, time",
        description="Show a thread's checkpoints, newest first: id, step, source, which "
        "nodes wrote each (and the state channels they changed), the nodes that run "
        "next, the channels of its pending writes, and when it was made.",
    )
    p.add_argument("url", metavar="URL", help="the checkpointer's URL")
    p.add_argument("thread", metavar="THREAD", help="the thread id")
    p.add_argument("--ns", default="", metavar="NS", help="checkpoint namespace (a subgraph's)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="show the N latest")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def _writes(row: HistoryRow) -> str:
    who = ", ".join(row.writers) or (row.source or "")
    return f"{who} → {', '.join(row.updated)}" if row.updated else who


def _pending(row: HistoryRow) -> str:
    text = ", ".join(row.pending_writes)
    return f"{text} ({row.interrupts} interrupt(s))" if row.interrupts else text


def run(args: argparse.Namespace, app: App) -> int:
    """Print the history."""
    with app.open(args.url) as saver:
        rows = history(saver, args.thread, args.ns, args.limit)
    if args.json:
        app.print_json([r.to_dict() for r in rows])
        return 0
    title = f"thread {args.thread}" + (f" (namespace {args.ns})" if args.ns else "")
    print_table(
        app.stdout,
        title,
        ("checkpoint", "step", "source", "writes", "next", "pending writes", "time"),
        [
            (
                r.checkpoint_id,
                "" if r.step is None else r.step,
                r.source or "",
                _writes(r),
                ", ".join(r.next),
                _pending(r),
                r.created_at,
            )
            for r in rows
        ],
        no_wrap=("checkpoint", "time"),
    )
    return 0
