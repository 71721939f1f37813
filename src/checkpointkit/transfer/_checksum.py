"""Checksums of threads, to tell whether two checkpointers hold the same data.

A thread's digest covers, per checkpoint: its namespace, id and parent id,
its metadata (as canonical JSON, so key order does not matter), the
checkpoint's bookkeeping (timestamp, channel versions, versions seen) and
every channel value, plus its pending writes (task id, channel, value).
Values are hashed through a named serializer (checkpointkit's
`MsgpackSerializer` by default), which writes the same bytes for equal
values whichever saver they were read from; a value it cannot write is
hashed by its type and ``repr``.

Writes are hashed grouped by task (tasks sorted by id, each task's writes in
order): the relative order of two tasks' writes is a saver's choice (its
task-path sort), not part of the data.

`ThreadDigest` holds the counts and the SHA-256; it also keeps one digest
pair per checkpoint (``parts``) so a copy can tell which checkpoints a target
already holds whole and which are missing writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checkpointkit.errors import SerializationError
from checkpointkit.serde.base import SerializerProtocol
from checkpointkit.transfer._records import CheckpointRecord, RecordKey

__all__ = ["ThreadDigest", "describe_difference", "digest_records"]

# Checkpoint fields that are bookkeeping, hashed as canonical JSON.
_SKELETON_FIELDS = ("ts", "channel_versions", "versions_seen")


@dataclass(frozen=True, slots=True)
class ThreadDigest:
    """Counts and checksum of one thread's checkpoints and writes.

    Two digests are equal when counts and checksum are; ``parts`` (per
    checkpoint: the digest of the checkpoint and that of its writes) is
    detail for finding the difference.
    """

    checkpoints: int
    writes: int
    sha256: str
    parts: Mapping[RecordKey, tuple[str, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        """Return counts and checksum as JSON-safe data."""
        return {"checkpoints": self.checkpoints, "writes": self.writes, "sha256": self.sha256}


def _normal(value: Any) -> Any:
    """Versions may be ints or strings depending on the saver: compare them as text."""
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr
    ).encode()


def _value_bytes(serde: SerializerProtocol, value: Any) -> bytes:
    try:
        tag, data = serde.dumps_typed(value)
    except (SerializationError, TypeError, ValueError):
        return f"repr:{type(value).__module__}.{type(value).__qualname__}:{value!r}".encode()
    return tag.encode() + b"\x00" + data


def _update(h: Any, *chunks: bytes) -> None:
    for chunk in chunks:  # length-prefixed, so adjacent fields cannot run together
        h.update(len(chunk).to_bytes(8, "big"))
        h.update(chunk)


def _checkpoint_digest(serde: SerializerProtocol, record: CheckpointRecord) -> tuple[str, str]:
    checkpoint = record.checkpoint
    head = {
        "ns": record.checkpoint_ns,
        "id": record.checkpoint_id,
        "parent": record.parent_id,
        "metadata": record.metadata,
        **{name: _normal(checkpoint.get(name)) for name in _SKELETON_FIELDS},
    }
    h = hashlib.sha256()
    _update(h, _canonical(head))
    values = checkpoint.get("channel_values") or {}
    for channel in sorted(values):
        _update(h, channel.encode(), _value_bytes(serde, values[channel]))
    w = hashlib.sha256()
    by_task: dict[str, list[bytes]] = {}
    for write in record.writes:
        by_task.setdefault(write.task_id, []).append(
            _canonical(write.channel) + b"\x00" + _value_bytes(serde, write.value)
        )
    for task_id in sorted(by_task):
        _update(w, task_id.encode(), *by_task[task_id])
    return h.hexdigest(), w.hexdigest()


def digest_records(records: Sequence[CheckpointRecord], serde: SerializerProtocol) -> ThreadDigest:
    """Return the digest of one thread's records (see the module docstring)."""
    parts = {r.key: _checkpoint_digest(serde, r) for r in records}
    h = hashlib.sha256()
    for key in sorted(parts):
        _update(h, key[0].encode(), key[1].encode(), *(p.encode() for p in parts[key]))
    return ThreadDigest(
        checkpoints=len(records),
        writes=sum(len(r.writes) for r in records),
        sha256=h.hexdigest(),
        parts=parts,
    )


def _label(key: RecordKey) -> str:
    ns, checkpoint_id = key
    return f"checkpoint {checkpoint_id}" + (f" (namespace {ns!r})" if ns else "")


def describe_difference(expected: ThreadDigest, actual: ThreadDigest) -> str:
    """Say how `actual` differs from `expected`: the first checkpoint that does."""
    notes: list[str] = []
    missing = [k for k in expected.parts if k not in actual.parts]
    extra = [k for k in actual.parts if k not in expected.parts]
    if missing:
        notes.append(f"{len(missing)} checkpoint(s) missing, first {_label(min(missing))}")
    if extra:
        notes.append(f"{len(extra)} unexpected checkpoint(s), first {_label(min(extra))}")
    for key in sorted(k for k in expected.parts if k in actual.parts):
        (want_c, want_w), (got_c, got_w) = expected.parts[key], actual.parts[key]
        if want_c != got_c:
            notes.append(f"{_label(key)} differs (ids, metadata or channel values)")
            break
        if want_w != got_w:
            notes.append(f"the pending writes of {_label(key)} differ")
            break
    if not notes:
        notes.append(
            f"counts differ: {expected.checkpoints} checkpoints / {expected.writes} writes "
            f"expected, {actual.checkpoints} / {actual.writes} found"
        )
    return "; ".join(notes)
