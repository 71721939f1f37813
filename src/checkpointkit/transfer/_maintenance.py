"""Fork, prune and sweep on any checkpointer, using its own method when it has one.

checkpointkit's savers have ``fork_thread``, ``prune`` and ``sweep``;
LangGraph's own savers do not. For them a fork copies the checkpoint's
ancestor chain (and the subgraph checkpoints hanging off it) into the new
thread through ``put`` / ``put_writes`` (`write_records`), pruning with the
``delete`` strategy deletes the thread, and the rest is refused with a typed
error that says what the saver lacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.checkpointers.base import PRUNE_STRATEGIES, check_strategy
from checkpointkit.errors import ConfigurationError
from checkpointkit.inspect import (
    UnknownCheckpointError,
    get_checkpoint,
    own_method,
    thread_exists,
)
from checkpointkit.transfer._copy import ThreadConflictError
from checkpointkit.transfer._records import CheckpointRecord, read_thread, write_records

__all__ = [
    "PRUNE_STRATEGIES",
    "ForkResult",
    "PruneResult",
    "fork_checkpoint",
    "prune_threads",
    "sweep",
]


def _saver_name(saver: BaseCheckpointSaver[Any]) -> str:
    return type(saver).__name__


@dataclass(frozen=True, slots=True)
class ForkResult:
    """A fork: the config of the new thread's checkpoint and how it was made."""

    config: RunnableConfig
    checkpoints: int  # checkpoints in the new thread
    method: str  # "fork_thread" (the saver's own) or "copy" (put / put_writes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fork as JSON-safe data."""
        conf = self.config["configurable"]
        return {
            "thread_id": conf["thread_id"],
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf["checkpoint_id"],
            "checkpoints": self.checkpoints,
            "method": self.method,
        }


def fork_selection(records: Sequence[CheckpointRecord], target: CheckpointRecord) -> list[str]:
    """Return the ids of the records a fork of `target` copies, sorted.

    Its ancestor chain in its namespace, and the checkpoints of nested
    namespaces whose metadata ``parents`` names one of the chain, so an
    interrupted subgraph can be resumed from the fork.
    """
    same_ns = {r.checkpoint_id: r for r in records if r.checkpoint_ns == target.checkpoint_ns}
    chain: list[str] = []
    row: CheckpointRecord | None = target
    while row is not None and row.checkpoint_id not in chain:
        chain.append(row.checkpoint_id)
        row = same_ns.get(row.parent_id) if row.parent_id else None
    prefix = target.checkpoint_ns
    children = [
        r.checkpoint_id
        for r in records
        if r.checkpoint_ns != prefix
        and (not prefix or r.checkpoint_ns.startswith(prefix + "|"))
        and isinstance(parents := r.metadata.get("parents"), dict)
        and parents.get(prefix) in chain
    ]
    return sorted(chain + children)


def fork_checkpoint(
    saver: BaseCheckpointSaver[Any],
    thread_id: str,
    checkpoint_id: str,
    new_thread_id: str,
    *,
    ns: str = "",
) -> ForkResult:
    """Copy a checkpoint and its ancestors into a new thread.

    Uses the saver's ``fork_thread`` when it has one; otherwise copies the
    records through ``put`` and ``put_writes``.

    Args:
        saver: Any checkpointer.
        thread_id: The thread to fork.
        checkpoint_id: The checkpoint to fork from (an id prefix works).
        new_thread_id: The new thread; it must not exist.
        ns: The checkpoint's namespace.

    Raises:
        UnknownCheckpointError: no such thread or checkpoint.
        ThreadConflictError: the new thread exists already.
    """
    tup = get_checkpoint(saver, thread_id, checkpoint_id, ns)
    checkpoint_id = str(tup.config["configurable"]["checkpoint_id"])
    if thread_exists(saver, new_thread_id):
        raise ThreadConflictError(
            f"thread {new_thread_id!r} exists already; fork into a new thread id"
        )
    own = own_method(saver, "fork_thread")
    if own is not None:
        config: RunnableConfig = own(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                              "checkpoint_id": checkpoint_id}},
            new_thread_id,
        )  # fmt: skip
        return ForkResult(config, len(read_thread(saver, new_thread_id)), "fork_thread")
    records = read_thread(saver, thread_id)
    target = next(r for r in records if r.key == (ns, checkpoint_id))
    chosen = set(fork_selection(records, target))
    copied = [r.with_thread(new_thread_id) for r in records if r.checkpoint_id in chosen]
    write_records(saver, copied)
    config = {
        "configurable": {
            "thread_id": new_thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id
        }
    }  # fmt: skip
    return ForkResult(config, len(copied), "copy")


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Checkpoints of one thread before and after pruning (all namespaces)."""

    thread_id: str
    before: int
    after: int

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-safe data."""
        return dataclasses.asdict(self)


def _count(saver: BaseCheckpointSaver[Any], thread_id: str) -> int:
    return sum(1 for _ in saver.list({"configurable": {"thread_id": thread_id}}))


def prune_threads(
    saver: BaseCheckpointSaver[Any],
    thread_ids: Sequence[str],
    strategy: str = "keep_latest",
) -> list[PruneResult]:
    """Prune threads: keep each namespace's latest checkpoint, or delete the threads.

    Args:
        saver: Any checkpointer (``keep_latest`` needs a ``prune`` method).
        thread_ids: The threads; each must exist.
        strategy: ``keep_latest`` or ``delete``.

    Raises:
        UnknownStrategyError: the strategy is not one of `PRUNE_STRATEGIES`.
        UnknownCheckpointError: a thread does not exist (nothing is pruned).
        ConfigurationError: the saver cannot prune with this strategy.
    """
    check_strategy(strategy)
    before = {t: _count(saver, t) for t in dict.fromkeys(thread_ids)}
    missing = [t for t, n in before.items() if n == 0]
    if missing:
        raise UnknownCheckpointError(f"no thread {', '.join(map(repr, missing))}; nothing pruned")
    own = own_method(saver, "prune")
    if own is not None:
        own(list(before), strategy=strategy)
    elif strategy == "delete" and own_method(saver, "delete_thread") is not None:
        for thread_id in before:
            saver.delete_thread(thread_id)
    elif strategy == "delete":
        raise ConfigurationError(f"{_saver_name(saver)} cannot delete threads")
    else:
        raise ConfigurationError(
            f"{_saver_name(saver)} has no prune method, so it can only delete whole "
            "threads: use --strategy delete"
        )
    return [PruneResult(t, n, _count(saver, t)) for t, n in before.items()]


def sweep(
    saver: BaseCheckpointSaver[Any],
    *,
    ttl: float | None = None,
    keep_last: int | None = None,
) -> dict[str, Any]:
    """Apply a retention policy with the saver's ``sweep``.

    Args:
        saver: A checkpointer with a ``sweep`` method (checkpointkit's SQLite
            and PostgreSQL savers).
        ttl: Delete threads idle for this many seconds.
        keep_last: Keep this many latest checkpoints per thread and namespace.

    Returns:
        What the sweep removed, as the saver reports it (field -> count).

    Raises:
        ConfigurationError: neither option given, or the saver cannot sweep.
    """
    if ttl is None and keep_last is None:
        raise ConfigurationError("sweep needs a policy: give a ttl, a keep_last, or both")
    own = own_method(saver, "sweep")
    if own is None:
        raise ConfigurationError(
            f"{_saver_name(saver)} has no sweep: its retention is applied otherwise "
            "(or not at all); see its documentation"
        )
    options: dict[str, Any] = {}
    if ttl is not None:
        options["ttl"] = ttl
    if keep_last is not None:
        options["keep_last"] = keep_last
    result = own(**options)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, dict):
        return dict(result)
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        return dict(result._asdict())
    return {"result": result}
