"""A per-process cache of stored value rows, so a read fetches only the rows it has not seen.

A checkpoint references one value row per channel, and from one step to the
next most of them are the rows the previous checkpoint referenced. A row
stored under a version made by `next_version` (``<counter>.<random>``) is
written once and never changes: the version is unique to that write, and a
put repeated with the same key stores the same value. Such a row may be
deleted (pruning, ``delete_thread``), but never while a stored checkpoint
references it, and a read first finds the checkpoint row in its own
transaction. So the rows this process stored or read can serve later reads
without asking SQLite again; only their bytes are kept, and every read
decodes them anew, so callers never share value objects through the cache.

Rows under caller-chosen versions (which may be reused for other values)
and rows with large payloads are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from checkpointkit.checkpointers._listdelta import is_unique_version
from checkpointkit.checkpointers._rows import BlobRow

__all__ = ["RowCache"]

RowKey = tuple[str, str, str, str]  # (thread_id, checkpoint_ns, channel, version)


class RowCache:
    """An LRU of immutable value rows, by (thread, namespace, channel, version).

    Args:
        size: How many rows to keep (0 turns the cache off).
        max_bytes: Rows whose payload and ops are larger are not kept.
    """

    def __init__(self, size: int = 8192, max_bytes: int = 16384) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._rows: OrderedDict[RowKey, BlobRow] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, keys: Iterable[RowKey]) -> tuple[list[BlobRow], list[RowKey]]:
        """Split `keys` into the rows held here and the keys still to fetch."""
        found: list[BlobRow] = []
        missing: list[RowKey] = []
        with self._lock:
            rows = self._rows
            for key in keys:
                row = rows.get(key)
                if row is None:
                    missing.append(key)
                else:
                    rows.move_to_end(key)
                    found.append(row)
        return found, missing

    def keep(self, rows: Iterable[BlobRow]) -> None:
        """Remember rows just stored or read (those that are safe to reuse)."""
        if not self._size:
            return
        fresh = [
            r
            for r in rows
            if len(r.payload or b"") + len(r.ops or b"") <= self._max_bytes
            and is_unique_version(r.version)
        ]
        if not fresh:
            return
        with self._lock:
            for r in fresh:
                key = (r.thread_id, r.checkpoint_ns, r.channel, r.version)
                self._rows[key] = r
                self._rows.move_to_end(key)
            while len(self._rows) > self._size:
                self._rows.popitem(last=False)

    def forget(self, thread_ids: Iterable[str] | None = None) -> None:
        """Drop the rows of some threads (all when None), e.g. after deleting them."""
        with self._lock:
            if thread_ids is None:
                self._rows.clear()
                return
            doomed = set(thread_ids)
            for key in [k for k in self._rows if k[0] in doomed]:
                del self._rows[key]
