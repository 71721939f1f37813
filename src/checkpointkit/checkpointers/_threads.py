"""Thread-level helpers shared by every checkpointer: summaries, forks, versions.

I/O-free: each works on rows a backend has already read.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checkpointkit.checkpointers._rows import CheckpointRow
from checkpointkit.errors import UnknownStrategyError

__all__ = [
    "PRUNE_STRATEGIES",
    "ThreadInfo",
    "check_strategy",
    "fork_selection",
    "moved_checkpoint",
    "next_version",
    "thread_info",
]

PRUNE_STRATEGIES = ("keep_latest", "delete")


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """A summary of one thread, as returned by ``list_threads``."""

    thread_id: str
    metadata: dict[str, Any]  # metadata of the thread's latest root checkpoint
    checkpoint_count: int  # checkpoints in the root namespace
    created_at: str  # ISO timestamp of the first root checkpoint
    updated_at: str  # ISO timestamp of the latest root checkpoint


def thread_info(rows: Iterable[CheckpointRow]) -> ThreadInfo | None:
    """Summarise the root-namespace rows of one thread."""
    first = last = None
    count = 0
    for row in rows:
        if row.checkpoint_ns:
            continue
        count += 1
        if first is None or row.checkpoint_id < first.checkpoint_id:
            first = row
        if last is None or row.checkpoint_id > last.checkpoint_id:
            last = row
    if first is None or last is None:
        return None
    return ThreadInfo(
        thread_id=last.thread_id,
        metadata=json.loads(last.metadata),
        checkpoint_count=count,
        created_at=first.ts,
        updated_at=last.ts,
    )


def next_version(current: str | int | float | None) -> str:
    """Return the channel version after `current`, unique per write.

    The random part keeps two forks that both write "version 5" of a channel
    from overwriting each other's stored value.
    """
    if current is None:
        n = 0
    elif isinstance(current, (int, float)):
        n = int(current)
    else:
        n = int(current.split(".")[0])
    return f"{n + 1:032}.{random.random():016}"


def fork_selection(rows: Iterable[CheckpointRow], target: CheckpointRow) -> list[CheckpointRow]:
    """Return the rows a fork of `target` copies: its ancestor chain and subgraphs.

    Subgraph checkpoints come along when their metadata names one of the
    chain's checkpoints as their parent in the target's namespace, so an
    interrupted subgraph can be resumed from the fork.
    """
    rows = list(rows)
    same_ns = {r.checkpoint_id: r for r in rows if r.checkpoint_ns == target.checkpoint_ns}
    chain: list[CheckpointRow] = []
    chain_ids: set[str] = set()
    row: CheckpointRow | None = target
    while row is not None and row.checkpoint_id not in chain_ids:
        chain.append(row)
        chain_ids.add(row.checkpoint_id)
        row = same_ns.get(row.parent_id) if row.parent_id else None
    prefix = target.checkpoint_ns
    children = []
    for r in rows:
        if r.checkpoint_ns == target.checkpoint_ns:
            continue
        if prefix and not r.checkpoint_ns.startswith(prefix + "|"):
            continue
        parents = json.loads(r.metadata).get("parents")
        if isinstance(parents, dict) and parents.get(prefix) in chain_ids:
            children.append(r)
    return chain + children


def check_strategy(strategy: str) -> None:
    """Raise a typed error for an unknown prune strategy."""
    if strategy not in PRUNE_STRATEGIES:
        raise UnknownStrategyError(
            f"unknown prune strategy {strategy!r}; use one of {', '.join(PRUNE_STRATEGIES)}"
        )


def moved_checkpoint(row: CheckpointRow, thread_id: str) -> CheckpointRow:
    """Return a copy of `row` under another thread id."""
    return CheckpointRow(
        thread_id, row.checkpoint_ns, row.checkpoint_id, row.parent_id,
        row.skeleton, row.metadata, row.run_id, row.ts,
    )  # fmt: skip
