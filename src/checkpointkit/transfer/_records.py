"""Checkpoints as records that move between checkpointers through the public saver API.

A `CheckpointRecord` is one checkpoint with everything a saver returns for
it: ids, parent, metadata, the checkpoint (channel values included) and its
pending writes. `read_thread` reads a thread's records with one ``list``
call; `write_records` stores them into another saver the way LangGraph
itself does, so any pair of backends works and the target applies its own
storage (checkpointkit's list deltas included):

* records go oldest first per namespace, each ``put`` with its parent's
  config and ``new_versions`` = the channel versions that differ from the
  parent's (every channel for a root), so unchanged values are shared;
* then one ``put_writes`` per task, in the order the source returned them.

The public API does not return a write's *task path*, so each task gets an
order key instead (its rank among the checkpoint's tasks, ``"000000"``,
``"000001"``...): savers sort pending writes by task path, and these keys
reproduce the source's order on the target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from checkpointkit.inspect import own_method

__all__ = [
    "CheckpointRecord",
    "RecordKey",
    "WriteRecord",
    "list_thread_ids",
    "new_versions",
    "read_thread",
    "record_from_tuple",
    "write_records",
]

RecordKey = tuple[str, str]  # (checkpoint_ns, checkpoint_id)


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One pending write of a checkpoint."""

    task_id: str
    task_path: str  # an order key (see the module docstring)
    channel: str
    value: Any


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One checkpoint of a thread, with its pending writes."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    metadata: dict[str, Any]
    checkpoint: dict[str, Any]  # a LangGraph `Checkpoint`, channel values included
    writes: list[WriteRecord] = field(default_factory=list)

    @property
    def key(self) -> RecordKey:
        """The record's (namespace, checkpoint id)."""
        return (self.checkpoint_ns, self.checkpoint_id)

    def with_thread(self, thread_id: str) -> CheckpointRecord:
        """Return the same checkpoint under another thread id."""
        return replace(self, thread_id=thread_id)


def record_from_tuple(tup: CheckpointTuple) -> CheckpointRecord:
    """Turn a `CheckpointTuple` into a record (task order keys assigned)."""
    conf = tup.config["configurable"]
    parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    ranks: dict[str, str] = {}
    writes = []
    for task_id, channel, value in tup.pending_writes or ():
        path = ranks.setdefault(str(task_id), f"{len(ranks):06d}")
        writes.append(WriteRecord(str(task_id), path, channel, value))
    return CheckpointRecord(
        thread_id=str(conf["thread_id"]),
        checkpoint_ns=str(conf.get("checkpoint_ns") or ""),
        checkpoint_id=str(conf["checkpoint_id"]),
        parent_id=str(parent) if parent else None,
        metadata=dict(tup.metadata or {}),
        checkpoint=dict(tup.checkpoint),
        writes=writes,
    )


def read_thread(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[CheckpointRecord]:
    """Read every checkpoint of a thread, all namespaces, sorted by (namespace, id).

    Checkpoint ids grow with time, so this is oldest first per namespace and
    every parent comes before its children.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    records = [record_from_tuple(t) for t in saver.list(config)]
    records.sort(key=lambda r: r.key)
    return records


def list_thread_ids(saver: BaseCheckpointSaver[Any]) -> list[str]:
    """Return the ids of every thread of a checkpointer, sorted.

    Uses ``list_threads`` when the saver has it; otherwise reads
    ``saver.list(None)`` (every checkpoint) for the ids.
    """
    own = own_method(saver, "list_threads")
    if own is not None:
        return sorted({str(info.thread_id) for info in own()})
    return sorted({str(t.config["configurable"]["thread_id"]) for t in saver.list(None)})


def new_versions(checkpoint: Mapping[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the channel versions of `checkpoint` that differ from its parent's.

    These are the ``new_versions`` LangGraph passes to ``put``: a saver stores
    values only for them and reuses the parent's for the rest. A root (no
    parent) gets all of them.
    """
    versions = cast(Mapping[str, Any], checkpoint.get("channel_versions") or {})
    if parent is None:
        return dict(versions)
    before = cast(Mapping[str, Any], parent.get("channel_versions") or {})
    return {ch: v for ch, v in versions.items() if ch not in before or before[ch] != v}


def _config(thread_id: str, ns: str, checkpoint_id: str | None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _by_task(writes: Iterable[WriteRecord]) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    groups: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
    for w in writes:
        groups.setdefault(w.task_id, (w.task_path, []))[1].append((w.channel, w.value))
    return [(task_id, path, items) for task_id, (path, items) in groups.items()]


def write_records(
    target: BaseCheckpointSaver[Any],
    records: Sequence[CheckpointRecord],
    *,
    skip_checkpoints: Iterable[RecordKey] = (),
    skip_writes: Iterable[RecordKey] = (),
    on_record: Callable[[CheckpointRecord], None] | None = None,
) -> int:
    """Store records into a saver through ``put`` and ``put_writes``.

    Args:
        target: The saver to write.
        records: One thread's records, sorted by (namespace, id) (`read_thread`).
        skip_checkpoints: Records already stored whole: no ``put``.
        skip_writes: Records whose writes are already stored: no ``put_writes``.
        on_record: Called after each record is handled (for progress).

    Returns:
        How many checkpoints were ``put``.
    """
    by_key = {r.key: r for r in records}
    skip_put, skip_w = set(skip_checkpoints), set(skip_writes)
    written = 0
    for record in records:
        ns, thread_id = record.checkpoint_ns, record.thread_id
        saved = _config(thread_id, ns, record.checkpoint_id)
        if record.key not in skip_put:
            parent = by_key.get((ns, record.parent_id)) if record.parent_id else None
            versions = new_versions(record.checkpoint, parent.checkpoint if parent else None)
            checkpoint = cast(
                Checkpoint,
                {
                    **record.checkpoint,
                    "channel_values": dict(record.checkpoint.get("channel_values") or {}),
                },
            )
            metadata = cast(CheckpointMetadata, dict(record.metadata))
            saved = target.put(
                _config(thread_id, ns, record.parent_id), checkpoint, metadata, versions
            )
            written += 1
        if record.writes and record.key not in skip_w:
            for task_id, path, items in _by_task(record.writes):
                target.put_writes(saved, items, task_id, path)
        if on_record is not None:
            on_record(record)
    return written
