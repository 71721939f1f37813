"""``checkpointkit fork``, ``prune`` and ``sweep``: change what a checkpointer keeps."""

from __future__ import annotations

import argparse
from typing import Any

from checkpointkit.cli._app import App, positive_float, positive_int
from checkpointkit.transfer import PRUNE_STRATEGIES, fork_checkpoint, prune_threads, sweep

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``fork``, ``prune`` and ``sweep`` commands."""
    fork = commands.add_parser(
        "fork",
        parents=[common],
        help="copy a checkpoint and its ancestors into a new thread",
        description="Fork THREAD at CHECKPOINT (an id prefix works) into NEW_THREAD, which "
        "must not exist: the saver's fork_thread when it has one, else a copy of the "
        "ancestor chain through put/put_writes.",
    )
    fork.add_argument("url", metavar="URL", help="the checkpointer's URL")
    fork.add_argument("thread", metavar="THREAD", help="the thread to fork")
    fork.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint to fork from")
    fork.add_argument("new_thread", metavar="NEW_THREAD", help="the new thread's id")
    fork.add_argument("--ns", default="", metavar="NS", help="checkpoint namespace")
    fork.add_argument("--json", action="store_true", help="print a JSON document")
    fork.set_defaults(run=run_fork)

    prune = commands.add_parser(
        "prune",
        parents=[common],
        help="keep only the latest checkpoint of threads, or delete them",
        description="Prune threads: keep_latest keeps each namespace's latest checkpoint "
        "(and what it needs); delete removes the threads.",
    )
    prune.add_argument("url", metavar="URL", help="the checkpointer's URL")
    prune.add_argument("threads", metavar="THREAD", nargs="+", help="thread ids")
    prune.add_argument(
        "--strategy", choices=PRUNE_STRATEGIES, default="keep_latest", help="default keep_latest"
    )
    prune.add_argument("--json", action="store_true", help="print a JSON list")
    prune.set_defaults(run=run_prune)

    sweep_ = commands.add_parser(
        "sweep",
        parents=[common],
        help="apply a retention policy to every thread",
        description="Delete threads idle for --ttl seconds and/or trim every thread to its "
        "--keep-last checkpoints per namespace (savers with a sweep method).",
    )
    sweep_.add_argument("url", metavar="URL", help="the checkpointer's URL")
    sweep_.add_argument("--ttl", type=positive_float, metavar="SECONDS", help="idle time")
    sweep_.add_argument("--keep-last", type=positive_int, metavar="N", help="checkpoints kept")
    sweep_.add_argument("--json", action="store_true", help="print a JSON document")
    sweep_.set_defaults(run=run_sweep)


def run_fork(args: argparse.Namespace, app: App) -> int:
    """Fork a thread."""
    with app.open(args.url) as saver:
        result = fork_checkpoint(saver, args.thread, args.checkpoint, args.new_thread, ns=args.ns)
    doc = result.to_dict()
    if args.json:
        app.print_json(doc)
    else:
        app.echo(
            f"forked thread {args.thread} at {doc['checkpoint_id']} into {doc['thread_id']} "
            f"({doc['checkpoints']} checkpoint(s), via {doc['method']})"
        )
    return 0


def run_prune(args: argparse.Namespace, app: App) -> int:
    """Prune threads."""
    with app.open(args.url) as saver:
        results = prune_threads(saver, args.threads, args.strategy)
    if args.json:
        app.print_json([r.to_dict() for r in results])
        return 0
    for r in results:
        app.echo(f"{r.thread_id}: {r.before} -> {r.after} checkpoint(s)")
    return 0


def run_sweep(args: argparse.Namespace, app: App) -> int:
    """Sweep a checkpointer."""
    with app.open(args.url) as saver:
        result = sweep(saver, ttl=args.ttl, keep_last=args.keep_last)
    if args.json:
        app.print_json(result)
    else:
        app.echo("swept: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items()))
    return 0
