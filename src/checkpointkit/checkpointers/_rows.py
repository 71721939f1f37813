"""Rows: the storage-neutral records every backend stores and reads back.

A checkpoint is stored as three kinds of rows, whatever the backend:

* `CheckpointRow`: one per checkpoint; the checkpoint without its channel
  values (the *skeleton*: ids, versions, versions seen), its metadata as JSON
  (so backends can filter on it) and its parent id.
* `BlobRow`: one per (thread, namespace, channel, version), written only when
  a channel's version changes, and shared by every checkpoint that references
  that version. List-valued channels are stored as chains of deltas
  (see `_listdelta`).
* `WriteRow`: one per pending write (task id, index) of a checkpoint.

Backends map these fields to columns, hash fields or dict entries; the
encoding of each field is decided here and in `base`, never in a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum

__all__ = ["BlobKind", "BlobRow", "CheckpointRow", "WriteRow", "replace"]


class BlobKind(IntEnum):
    """How a `BlobRow` holds its channel value."""

    VALUE = 0  # payload is the serialized value
    EMPTY = 1  # the channel has no value at this version
    LIST = 2  # payload is a whole list: the root of a delta chain
    LIST_DELTA = 3  # payload holds new items; `ops` + `base` say how to rebuild


@dataclass(slots=True)
class CheckpointRow:
    """One checkpoint, without channel values."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    skeleton: bytes  # core-encoded checkpoint minus channel values
    metadata: str  # JSON text
    run_id: str | None  # copied out of the metadata for delete_for_runs
    ts: str  # the checkpoint's ISO-8601 timestamp


@dataclass(slots=True)
class BlobRow:
    """One stored version of one channel."""

    thread_id: str
    checkpoint_ns: str
    channel: str
    version: str
    kind: BlobKind
    type: str | None = None  # serializer type tag of `payload`
    payload: bytes | None = None
    chain: str | None = None  # version of the chain's root snapshot
    seq: int = 0  # position in the chain; 0 for its root
    base: str | None = None  # version this delta applies to
    ops: bytes | None = None  # encoded piece table; None means "append"
    length: int = 0  # number of items of this list version
    wrapped: bool = False  # the list is the value of a `_DeltaSnapshot`


@dataclass(slots=True)
class WriteRow:
    """One pending write of a task, attached to a checkpoint."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str
    payload: bytes
