"""``checkpointkit show`` and ``diff``: a checkpoint's state, and what changed between two."""

from __future__ import annotations

import argparse
import json
from typing import Any

from checkpointkit.cli._app import App
from checkpointkit.cli._output import one_line
from checkpointkit.inspect import ChannelDiff, diff_states, get_checkpoint, render_state

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``show`` and ``diff`` commands."""
    show = commands.add_parser(
        "show",
        parents=[common],
        help="a checkpoint's state (the latest by default)",
        description="Print the state of a thread's checkpoint (the latest unless CHECKPOINT "
        "names one; an id prefix works): channel values, messages as type and content, "
        "the next nodes, interrupts and pending writes.",
    )
    show.add_argument("url", metavar="URL", help="the checkpointer's URL")
    show.add_argument("thread", metavar="THREAD", help="the thread id")
    show.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help="checkpoint id")
    show.add_argument("--ns", default="", metavar="NS", help="checkpoint namespace")
    show.add_argument("--all", action="store_true", help="include LangGraph's internal channels")
    show.add_argument("--json", action="store_true", help="print a JSON document")
    show.set_defaults(run=run_show)

    diff = commands.add_parser(
        "diff",
        parents=[common],
        help="what changed between two checkpoints of a thread",
        description="Compare checkpoint B with checkpoint A: channels added, removed and "
        "changed; for lists, the items added and removed (messages matched by id).",
    )
    diff.add_argument("url", metavar="URL", help="the checkpointer's URL")
    diff.add_argument("thread", metavar="THREAD", help="the thread id")
    diff.add_argument("a", metavar="A", help="the earlier checkpoint id")
    diff.add_argument("b", metavar="B", help="the later checkpoint id")
    diff.add_argument("--ns", default="", metavar="NS", help="checkpoint namespace")
    diff.add_argument("--all", action="store_true", help="include internal channels")
    diff.add_argument("--json", action="store_true", help="print a JSON document")
    diff.set_defaults(run=run_diff)


def _block(value: Any, indent: str) -> list[str]:
    """Lines for one channel value: a message list one message per line, else JSON."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "type" in v and "content" in v for v in value)
    ):
        return [f"{indent}{one_line(v, limit=400)}" for v in value]
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return [indent + line for line in text.splitlines()]


def run_show(args: argparse.Namespace, app: App) -> int:
    """Print a checkpoint's state."""
    with app.open(args.url) as saver:
        tup = get_checkpoint(saver, args.thread, args.checkpoint, args.ns)
    doc = render_state(tup, internal=args.all)
    if args.json:
        app.print_json(doc)
        return 0
    head = f"thread {doc['thread_id']}  checkpoint {doc['checkpoint_id']}"
    if doc["checkpoint_ns"]:
        head += f"  namespace {doc['checkpoint_ns']}"
    lines = [
        head,
        f"step {doc['step']}  source {doc['source']}  at {doc['created_at']}",
        f"parent {doc['parent_checkpoint_id'] or '-'}",
        "values:",
    ]
    if not doc["values"]:
        lines.append("  (none)")
    for channel, value in doc["values"].items():
        lines.append(f"  {channel}:")
        lines += _block(value, "    ")
    lines.append(f"next: {', '.join(doc['next']) or '-'}")
    if doc["interrupts"]:
        lines.append("interrupts:")
        lines += [f"  {one_line(i, limit=400)}" for i in doc["interrupts"]]
    if doc["pending_writes"]:
        lines.append(f"pending writes ({len(doc['pending_writes'])}):")
        lines += [
            f"  {w['task_id']}  {w['channel']}: {one_line(w['value'])}"
            for w in doc["pending_writes"]
        ]
    lines.append(f"metadata: {json.dumps(doc['metadata'], ensure_ascii=False)}")
    app.echo("\n".join(lines))
    return 0


def _describe(change: ChannelDiff) -> list[str]:
    if change.change == "added":
        return [f"+ {change.channel}: {one_line(change.after)}"]
    if change.change == "removed":
        return [f"- {change.channel}: {one_line(change.before)}"]
    if change.items_added is None:
        return [f"~ {change.channel}: {one_line(change.before)} -> {one_line(change.after)}"]
    added, removed = change.items_added or [], change.items_removed or []
    edited = change.items_changed or []
    counts = f"+{len(added)} -{len(removed)}" + (f" ~{len(edited)}" if edited else "")
    lines = [f"~ {change.channel}: {counts} item(s)"]
    if not (added or removed or edited):
        lines[0] += " (reordered)"
    lines += [f"    + {one_line(v)}" for v in added]
    lines += [f"    - {one_line(v)}" for v in removed]
    lines += [f"    ~ {e['id']}: {one_line(e['before'])} -> {one_line(e['after'])}" for e in edited]
    return lines


def run_diff(args: argparse.Namespace, app: App) -> int:
    """Print what changed from A to B."""
    with app.open(args.url) as saver:
        a = get_checkpoint(saver, args.thread, args.a, args.ns)
        b = get_checkpoint(saver, args.thread, args.b, args.ns)
    diff = diff_states(a, b, internal=args.all)
    if args.json:
        app.print_json(diff.to_dict())
        return 0
    lines = [f"thread {diff.thread_id}: {diff.a} -> {diff.b}"]
    for change in diff.channels:
        lines += _describe(change)
    if not diff.channels:
        lines.append("no differences in the state")
    app.echo("\n".join(lines))
    return 0
