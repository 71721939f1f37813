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

A put also leaves no row at all for a channel it gives a new version but no
value (LangGraph's consumed inputs and branches); since that version is
never given to another value, the cache remembers such keys as absent, so a
read does not ask for them again either.

Rows under caller-chosen versions (which may be reused for other values)
and rows with large payloads are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from checkpointkit.checkpointers._listdelta import is_unique_version
from checkpointkit.checkpointers._rows import BlobKind, BlobRow

__all__ = ["RowCache"]

RowKey = tuple[str, str, str, str]  # (thread_id, checkpoint_ns, channel, version)
# The marker of a key with no row (not a real row: `take` never returns it).
_ABSENT = BlobRow("", "", "", "", BlobKind.EMPTY)


class RowCache:
    """A bounded map of immutable value rows, by (thread, namespace, channel, version).

    Lookups take no lock (a dict read is atomic); inserts do, and drop the
    oldest eighth of the rows when the map is full (first in, first out: a
    row still in use is simply fetched and kept again).

    Args:
        size: How many rows to keep (0 turns the cache off).
        max_bytes: Rows whose payload and ops are larger are not kept.
    """

    def __init__(self, size: int = 8192, max_bytes: int = 16384) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._rows: dict[RowKey, BlobRow] = {}
        self._lock = threading.Lock()

    def take(self, keys: Iterable[RowKey]) -> tuple[list[BlobRow], list[RowKey]]:
        """Split `keys` into the rows held here and the keys still to fetch.

        Keys known to have no row are in neither list.
        """
        found: list[BlobRow] = []
        missing: list[RowKey] = []
        get = self._rows.get
        for key in keys:
            row = get(key)
            if row is None:
                missing.append(key)
            elif row is not _ABSENT:
                found.append(row)
        return found, missing

    def all_of(
        self, thread_id: str, ns: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], BlobRow] | None:
        """Return the rows of one checkpoint's ``(channel, version)`` keys, if all are held."""
        found: dict[tuple[str, str], BlobRow] = {}
        get = self._rows.get
        for channel, version in keys:
            row = get((thread_id, ns, channel, version))
            if row is None:
                return None
            if row is not _ABSENT:
                found[(channel, version)] = row
        return found

    def keep(self, rows: Iterable[BlobRow]) -> None:
        """Remember rows just stored or read (those that are safe to reuse)."""
        if not self._size:
            return
        self._insert(
            ((r.thread_id, r.checkpoint_ns, r.channel, r.version), r)
            for r in rows
            if len(r.payload or b"") + len(r.ops or b"") <= self._max_bytes
            and is_unique_version(r.version)
        )

    def keep_absent(self, keys: Iterable[RowKey]) -> None:
        """Remember keys that have no row: a new unique version stored without a value.

        Only for keys a committed put skipped, or that a read transaction
        found missing while it saw a checkpoint referencing them.
        """
        if self._size:
            self._insert((k, _ABSENT) for k in keys if is_unique_version(k[3]))

    def _insert(self, entries: Iterable[tuple[RowKey, BlobRow]]) -> None:
        fresh = list(entries)
        if not fresh:
            return
        with self._lock:
            rows = self._rows
            if len(rows) + len(fresh) > self._size:
                for key in list(rows)[: max(len(fresh), self._size // 8)]:
                    del rows[key]
            rows.update(fresh)

    def forget(self, thread_ids: Iterable[str] | None = None) -> None:
        """Drop the rows of some threads (all when None), e.g. after deleting them."""
        with self._lock:
            if thread_ids is None:
                self._rows.clear()
                return
            doomed = set(thread_ids)
            for key in [k for k in self._rows if k[0] in doomed]:
                del self._rows[key]
