"""Loading what checkpoint rows need to be decoded: value rows, delta chains, writes.

Runs inside the caller's read transaction. A checkpoint's skeleton names the
value rows it references; those held in the process's `RowCache` are not
fetched again, the others are fetched in one query (by primary key, keyed on
channel and version), and the rows of a list's delta chain only for the
versions the storage core does not hold, nor a ``list`` page can slice out
of a version it holds (`_seed`).
`load_cached` is the path of ``get_tuple``: one statement reads the checkpoint
row with its writes (`_sql.fetch_checkpoint`), and for a checkpoint whose
values this process wrote or read before that is the only one; otherwise
`load_one` reads the rest in a read transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import BlobKey, ListMemo, StorageCore
from checkpointkit.checkpointers.sqlite._rowcache import RowCache
from checkpointkit.checkpointers.sqlite._sql import (
    fetch_blobs,
    fetch_chains,
    fetch_checkpoint,
    fetch_writes,
)

__all__ = ["Checkpoint", "GroupKey", "Loaded", "Tail", "load", "load_cached", "load_one"]

GroupKey = tuple[str, str]  # (thread_id, checkpoint_ns)
_LISTS = (BlobKind.LIST, BlobKind.LIST_DELTA)


@dataclass
class Loaded:
    """Everything needed to decode some checkpoint rows, by (thread, namespace)."""

    rows: list[CheckpointRow]
    skeletons: list[dict[str, Any]]
    blobs: dict[GroupKey, dict[BlobKey, BlobRow]] = field(default_factory=dict)
    writes: dict[tuple[str, str, str], list[WriteRow]] = field(default_factory=dict)


def _values(
    cur: sqlite3.Cursor, keys: list[tuple[str, str, str, str]], cache: RowCache | None
) -> list[BlobRow]:
    """Return the value rows of `keys` that exist, from the cache or the file."""
    if cache is None:
        return fetch_blobs(cur, keys)
    found, missing = cache.take(keys)
    if missing:
        fetched = fetch_blobs(cur, missing)
        cache.keep(fetched)
        if len(fetched) < len(missing):  # referenced by a checkpoint of this snapshot
            got = {(b.thread_id, b.checkpoint_ns, b.channel, b.version) for b in fetched}
            cache.keep_absent(k for k in missing if k not in got)
        found += fetched
    return found


Tail = tuple[BlobRow, ListState]  # a list version a page rebuilt, with its row


def _seed(
    core: StorageCore,
    group: GroupKey,
    blobs: dict[BlobKey, BlobRow],
    memo: ListMemo,
    tails: Mapping[tuple[str, str, str], Tail],
) -> None:
    """Register, before chain rows are requested, the list versions a page can slice.

    A list page newest first reads versions that are mostly prefixes of one
    this process holds: the cached latest version (on the first page), or
    the oldest version the previous page rebuilt. `ListMemo.seed_prefixes`
    finds them by walking base pointers through the page's own rows, so their
    delta chains need not be read. Versions it cannot reach (an edit, a fork)
    still get their chain rows.
    """
    thread_id, ns = group
    for (tail_thread, tail_ns, channel), (blob, state) in tails.items():
        if (tail_thread, tail_ns) == group:
            blobs.setdefault((channel, blob.version), blob)
            memo.seed_prefixes(state, blob, blobs)
    for key, blob in list(blobs.items()):
        if blob.kind in _LISTS and key not in memo.states:
            held = core.cached_list(thread_id, ns, blob)
            if held is not None:
                memo.states[key] = held
                memo.seed_prefixes(held, blob, blobs)


def load(
    cur: sqlite3.Cursor,
    core: StorageCore,
    rows: list[CheckpointRow],
    memos: dict[GroupKey, ListMemo] | None = None,
    cache: RowCache | None = None,
    tails: Mapping[tuple[str, str, str], Tail] | None = None,
) -> Loaded:
    """Fetch the blobs (with their delta chains) and writes of `rows`: three queries at most.

    Args:
        cur: The cursor of the caller's read transaction.
        core: The storage core.
        rows: The checkpoint rows to load.
        memos: The list pages' memos by (thread, namespace), filled here with
            the versions the page can slice out of ones it holds (`_seed`).
        cache: Value rows held by the process (not fetched again).
        tails: The oldest list versions the previous pages rebuilt.
    """
    skeletons = [core.decode_skeleton(row.skeleton, row.checkpoint_id) for row in rows]
    loaded = Loaded(rows, skeletons)
    keys = [
        (row.thread_id, row.checkpoint_ns, channel, version)
        for row, skeleton in zip(rows, skeletons, strict=True)
        for channel, version in core.needed_blobs(skeleton)
    ]
    for blob in _values(cur, keys, cache):
        loaded.blobs.setdefault((blob.thread_id, blob.checkpoint_ns), {})[
            (blob.channel, blob.version)
        ] = blob
    requests = []
    for group, blobs in loaded.blobs.items():
        memo = memos.setdefault(group, ListMemo()) if memos is not None else None
        if memo is not None:
            _seed(core, group, blobs, memo, tails or {})
        # A list version rebuilt on an earlier page, or sliced, needs no chain rows.
        pending = [
            b
            for key, b in blobs.items()
            if memo is None or (key not in memo.states and key not in memo.prefixes)
        ]
        for (channel, chain), seq in core.chain_requests(pending).items():
            requests.append((*group, channel, chain, seq))
    if requests:
        # Chain rows come by the hundred and are seldom read again: not cached.
        for blob in fetch_chains(cur, requests):
            group_blobs = loaded.blobs.setdefault((blob.thread_id, blob.checkpoint_ns), {})
            group_blobs.setdefault((blob.channel, blob.version), blob)
    writes = fetch_writes(cur, [(r.thread_id, r.checkpoint_ns, r.checkpoint_id) for r in rows])
    for write in writes:
        loaded.writes.setdefault(
            (write.thread_id, write.checkpoint_ns, write.checkpoint_id), []
        ).append(write)
    return loaded


class Checkpoint(NamedTuple):
    """One checkpoint's rows, ready to decode."""

    row: CheckpointRow
    writes: list[WriteRow]
    skeleton: dict[str, Any]
    blobs: dict[BlobKey, BlobRow]


def load_cached(
    cur: sqlite3.Cursor,
    core: StorageCore,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    cache: RowCache,
) -> Checkpoint | bool:
    """Read one checkpoint with one statement, if the process holds everything else it needs.

    Runs outside a transaction (`Database.run`): the statement reads the
    checkpoint row and its writes from one snapshot, and the value rows and
    lists come from the process's caches, which hold only rows that never
    change. Returns False when there is no such checkpoint, True when some
    value row or delta chain must be read (the caller then reads everything
    in one read transaction with `load_one`).
    """
    row, writes = fetch_checkpoint(cur, thread_id, ns, checkpoint_id)
    if row is None:
        return False
    skeleton = core.decode_skeleton(row.skeleton, row.checkpoint_id)
    blobs = cache.all_of(thread_id, ns, core.needed_blobs(skeleton))
    if blobs is None or core.chain_requests(blobs.values()):
        return True
    return Checkpoint(row, writes, skeleton, blobs)


def load_one(
    cur: sqlite3.Cursor,
    core: StorageCore,
    row: CheckpointRow,
    cache: RowCache | None,
) -> tuple[dict[str, Any], dict[BlobKey, BlobRow]]:
    """Return one checkpoint's skeleton and the value rows it needs (with delta chains)."""
    skeleton = core.decode_skeleton(row.skeleton, row.checkpoint_id)
    thread_id, ns = row.thread_id, row.checkpoint_ns
    keys = [(thread_id, ns, channel, version) for channel, version in core.needed_blobs(skeleton)]
    blobs = {(b.channel, b.version): b for b in _values(cur, keys, cache)}
    requests = [
        (thread_id, ns, channel, chain, seq)
        for (channel, chain), seq in core.chain_requests(blobs.values()).items()
    ]
    if requests:
        for blob in fetch_chains(cur, requests):
            blobs.setdefault((blob.channel, blob.version), blob)
    return skeleton, blobs
