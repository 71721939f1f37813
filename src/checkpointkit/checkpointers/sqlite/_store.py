"""The SQL of every checkpointer operation, run on a cursor inside a transaction.

Each function here takes a cursor of an open transaction (`Database.read` or
`Database.write`) and the `StorageCore`, and moves rows: it never commits,
never decodes values for the caller and never waits on anything but SQLite.
The saver (`_saver`) picks the transaction, calls one of these, and decodes
the rows after the transaction ended, so no lock is held while Python
deserializes or while a caller iterates.

Reads are batched so their count does not grow with the data: a page of
``list`` is one query for the checkpoint rows, then `_load` fetches their
values, delta chains and writes; the ancestor walk of
``get_delta_channel_history`` reads ancestors in growing batches.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers._rows import BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import (
    BlobKey,
    ListMemo,
    PutPlan,
    StorageCore,
    fork_selection,
    moved_checkpoint,
)
from checkpointkit.checkpointers.sqlite._filters import (
    delete_index,
    metadata_clauses,
    value_test,
    write_index,
)
from checkpointkit.checkpointers.sqlite._sql import (
    BLOB_COLS,
    BLOB_HEAD_COLS,
    CHECKPOINT_COLS,
    WRITE_COLS,
    blob_params,
    checkpoint_params,
    fetch_blobs,
    fetch_chains,
    fetch_writes,
    insert_sql,
    select_cols,
    to_blob,
    to_checkpoint,
    values_join,
    write_params,
)
from checkpointkit.errors import ConfigurationError

__all__ = [
    "ListCursor",
    "collect_garbage",
    "copy_rows",
    "crowded_threads",
    "delete_for_runs",
    "delete_rows",
    "delete_threads",
    "delta_history_rows",
    "fork",
    "get_row",
    "idle_threads",
    "insert_checkpoint",
    "keep_last",
    "namespace_size",
    "newest_id",
    "page_rows",
    "prune_thread",
    "put",
    "put_writes",
    "refresh_threads",
    "still_idle",
    "storage_bytes",
    "thread_page",
    "thread_rows",
]

GroupKey = tuple[str, str]  # (thread_id, checkpoint_ns)
HistoryStep = tuple[CheckpointRow, dict[str, Any], set[str]]  # see delta_history_walk
_C = select_cols(CHECKPOINT_COLS, "c")
_ORDER = "ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC"

_UPSERT_BLOB = (
    insert_sql("ck_blobs", BLOB_COLS)
    + " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in BLOB_COLS[4:])
)
_BLOB_EXISTS = (
    "SELECT 1 FROM ck_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? "
    "AND version = ?"
)
_REPLACE_CHECKPOINT = insert_sql("ck_checkpoints", CHECKPOINT_COLS, "INSERT OR REPLACE")
_INSERT_CHECKPOINT = (
    insert_sql("ck_checkpoints", CHECKPOINT_COLS)
    + " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING"
)
_WRITE_FIRST_WINS = insert_sql("ck_writes", WRITE_COLS, "INSERT OR IGNORE")
_WRITE_REPLACE = insert_sql("ck_writes", WRITE_COLS, "INSERT OR REPLACE")
_TOUCH_THREAD = """
INSERT INTO ck_threads (thread_id, root_count, first_id, created_at, latest_id, updated_at,
                        touched_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (thread_id) DO UPDATE SET
  root_count = root_count + excluded.root_count,
  first_id = CASE WHEN excluded.first_id IS NOT NULL
                   AND (first_id IS NULL OR excluded.first_id <= first_id)
             THEN excluded.first_id ELSE first_id END,
  created_at = CASE WHEN excluded.first_id IS NOT NULL
                     AND (first_id IS NULL OR excluded.first_id <= first_id)
               THEN excluded.created_at ELSE created_at END,
  latest_id = CASE WHEN excluded.latest_id IS NOT NULL
                    AND (latest_id IS NULL OR excluded.latest_id >= latest_id)
              THEN excluded.latest_id ELSE latest_id END,
  updated_at = CASE WHEN excluded.latest_id IS NOT NULL
                     AND (latest_id IS NULL OR excluded.latest_id >= latest_id)
               THEN excluded.updated_at ELSE updated_at END,
  touched_at = max(touched_at, excluded.touched_at)
"""
_REFRESH_THREAD = """
UPDATE ck_threads SET
  root_count = (SELECT count(*) FROM ck_checkpoints c
                WHERE c.thread_id = ck_threads.thread_id AND c.checkpoint_ns = ''),
  first_id = (SELECT min(c.checkpoint_id) FROM ck_checkpoints c
              WHERE c.thread_id = ck_threads.thread_id AND c.checkpoint_ns = ''),
  created_at = (SELECT c.ts FROM ck_checkpoints c
                WHERE c.thread_id = ck_threads.thread_id AND c.checkpoint_ns = ''
                ORDER BY c.checkpoint_id ASC LIMIT 1),
  latest_id = (SELECT max(c.checkpoint_id) FROM ck_checkpoints c
               WHERE c.thread_id = ck_threads.thread_id AND c.checkpoint_ns = ''),
  updated_at = (SELECT c.ts FROM ck_checkpoints c
                WHERE c.thread_id = ck_threads.thread_id AND c.checkpoint_ns = ''
                ORDER BY c.checkpoint_id DESC LIMIT 1)
WHERE thread_id = ?
"""


def get_row(
    cur: sqlite3.Cursor, thread_id: str, ns: str, checkpoint_id: str | None
) -> CheckpointRow | None:
    """Fetch one checkpoint row, or the latest of the namespace when no id is given."""
    if checkpoint_id is None:
        found = cur.execute(
            f"SELECT {_C} FROM ck_checkpoints c WHERE c.thread_id = ? AND c.checkpoint_ns = ? "  # noqa: S608
            "ORDER BY c.checkpoint_id DESC LIMIT 1",
            (thread_id, ns),
        ).fetchone()
    else:
        found = cur.execute(
            f"SELECT {_C} FROM ck_checkpoints c WHERE c.thread_id = ? AND c.checkpoint_ns = ? "  # noqa: S608
            "AND c.checkpoint_id = ?",
            (thread_id, ns, checkpoint_id),
        ).fetchone()
    return None if found is None else to_checkpoint(found)


def newest_id(cur: sqlite3.Cursor, thread_id: str, ns: str) -> str | None:
    """Return the newest checkpoint id of a thread's namespace (for the single-writer guard)."""
    found = cur.execute(
        "SELECT max(checkpoint_id) FROM ck_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?",
        (thread_id, ns),
    ).fetchone()
    return None if found is None or found[0] is None else str(found[0])


def thread_rows(cur: sqlite3.Cursor, thread_id: str, ns: str | None = None) -> list[CheckpointRow]:
    """Fetch every checkpoint row of a thread (or of one of its namespaces)."""
    if ns is None:
        sql = f"SELECT {_C} FROM ck_checkpoints c WHERE c.thread_id = ?"  # noqa: S608
        found = cur.execute(sql, (thread_id,))
    else:
        found = cur.execute(
            f"SELECT {_C} FROM ck_checkpoints c WHERE c.thread_id = ? AND c.checkpoint_ns = ?",  # noqa: S608
            (thread_id, ns),
        )
    return [to_checkpoint(r) for r in found.fetchall()]


def blob_heads(cur: sqlite3.Cursor, thread_id: str) -> dict[str, dict[BlobKey, BlobRow]]:
    """Fetch a thread's blob rows without payloads, by namespace."""
    found = cur.execute(
        f"SELECT {select_cols(BLOB_HEAD_COLS, 'b')} FROM ck_blobs b WHERE b.thread_id = ?",  # noqa: S608
        (thread_id,),
    ).fetchall()
    out: dict[str, dict[BlobKey, BlobRow]] = defaultdict(dict)
    for r in found:
        blob = to_blob(r)
        out[blob.checkpoint_ns][(blob.channel, blob.version)] = blob
    return out


# --- list --------------------------------------------------------------------------


@dataclass
class ListCursor:
    """Where a ``list`` is: its arguments, and the last row it returned."""

    thread_id: str | None
    ns: str | None
    only_id: str | None
    before_id: str | None
    filter: dict[str, Any]
    remaining: int | None
    page_size: int
    after: tuple[str, str, str] | None = None  # (checkpoint_id, thread_id, ns) last seen
    done: bool = False
    memos: dict[GroupKey, ListMemo] = field(default_factory=dict)
    # per (thread, namespace, channel): the oldest list version rebuilt so far
    tails: dict[tuple[str, str, str], tuple[BlobRow, ListState]] = field(default_factory=dict)


def page_rows(cur: sqlite3.Cursor, lc: ListCursor) -> list[CheckpointRow]:
    """Fetch the next page of checkpoint rows, newest first (one query).

    Metadata filters are applied in SQL through the ``ck_metadata`` index;
    the caller re-checks the candidates exactly (see `_filters`).
    """
    where: list[str] = []
    params: list[Any] = []
    filters = dict(lc.filter)
    if lc.thread_id is None and filters:
        # Across threads, walk the index of the first filter key in id order.
        key, value = next(iter(filters.items()))
        del filters[key]
        test, first_params = value_test("m0", key, value)
        source = (
            "ck_metadata m0 CROSS JOIN ck_checkpoints c ON c.thread_id = m0.thread_id "
            "AND c.checkpoint_ns = m0.checkpoint_ns AND c.checkpoint_id = m0.checkpoint_id"
        )
        where.append(test)
        params += first_params
        order = "ORDER BY m0.checkpoint_id DESC, m0.thread_id DESC, m0.checkpoint_ns DESC"
        col = "m0"
    else:
        source = "ck_checkpoints c"
        order = _ORDER
        col = "c"
    if lc.thread_id is not None:
        where.append("c.thread_id = ?")
        params.append(lc.thread_id)
    if lc.ns is not None:
        where.append("c.checkpoint_ns = ?")
        params.append(lc.ns)
    if lc.only_id is not None:
        where.append("c.checkpoint_id = ?")
        params.append(lc.only_id)
    if lc.before_id is not None:
        where.append(f"{col}.checkpoint_id < ?")
        params.append(lc.before_id)
    if lc.after is not None:
        # The plain bound lets SQLite seek the index; the row value breaks ties.
        where.append(
            f"{col}.checkpoint_id <= ? AND ({col}.checkpoint_id, {col}.thread_id, "
            f"{col}.checkpoint_ns) < (?, ?, ?)"
        )
        params += [lc.after[0], *lc.after]
    clauses, more = metadata_clauses(filters, "c.thread_id", "c.checkpoint_ns", "c.checkpoint_id")
    where += clauses
    params += more
    sql = f"SELECT {_C} FROM {source}"  # noqa: S608
    if where:
        sql += " WHERE " + " AND ".join(where)
    size = lc.page_size if lc.remaining is None else max(1, min(lc.page_size, lc.remaining))
    sql += f" {order} LIMIT ?"
    params.append(size)
    rows = [to_checkpoint(r) for r in cur.execute(sql, params).fetchall()]
    if len(rows) < size:
        lc.done = True
    if rows:
        last = rows[-1]
        lc.after = (last.checkpoint_id, last.thread_id, last.checkpoint_ns)
    return rows


# --- put -------------------------------------------------------------------------------


def insert_checkpoint(
    cur: sqlite3.Cursor, row: CheckpointRow, replaces: CheckpointRow | None
) -> None:
    """Store a checkpoint row and index its metadata.

    Args:
        cur: The cursor of a write transaction.
        row: The row to store.
        replaces: The stored row with the same key, if any (its index rows go).
    """
    if replaces is not None:
        delete_index(cur, [replaces])
    cur.execute(_REPLACE_CHECKPOINT, checkpoint_params(row))
    write_index(cur, row)


def put(cur: sqlite3.Cursor, core: StorageCore, plan: PutPlan, now: float) -> None:
    """Store a planned put: its blobs, checkpoint, metadata index and thread summary."""
    row = plan.checkpoint
    bases = plan.delta_bases
    if bases:
        missing = {
            (channel, version)
            for channel, version in bases
            if cur.execute(
                _BLOB_EXISTS, (row.thread_id, row.checkpoint_ns, channel, version)
            ).fetchone()
            is None
        }
        if missing:  # pruned or deleted since this process cached them
            core.rebase_missing(plan, missing)
    cur.executemany(_UPSERT_BLOB, [blob_params(b) for b in plan.blobs])
    # A new checkpoint in one statement; only one put again replaces a row.
    existed = cur.execute(_INSERT_CHECKPOINT, checkpoint_params(row)).rowcount == 0
    if existed:
        insert_checkpoint(
            cur, row, get_row(cur, row.thread_id, row.checkpoint_ns, row.checkpoint_id)
        )
    else:
        write_index(cur, row)
    if row.checkpoint_ns:
        summary: tuple[Any, ...] = (row.thread_id, 0, None, None, None, None, now)
    else:
        new = 0 if existed else 1
        cid, ts = row.checkpoint_id, row.ts
        summary = (row.thread_id, new, cid, ts, cid, ts, now)
    cur.execute(_TOUCH_THREAD, summary)


def put_writes(cur: sqlite3.Cursor, rows: Sequence[WriteRow]) -> None:
    """Store writes: ordinary ones first-wins, special (negative idx) ones replaced."""
    first = [write_params(w) for w in rows if w.idx >= 0]
    special = [write_params(w) for w in rows if w.idx < 0]
    if first:
        cur.executemany(_WRITE_FIRST_WINS, first)
    if special:
        cur.executemany(_WRITE_REPLACE, special)


# --- deletion, garbage collection and pruning -------------------------------------------


def delete_threads(cur: sqlite3.Cursor, thread_ids: Sequence[str]) -> None:
    """Delete every row of some threads."""
    for thread_id in thread_ids:
        delete_index(cur, thread_rows(cur, thread_id))
    params = [(t,) for t in thread_ids]
    for table in ("ck_checkpoints", "ck_blobs", "ck_writes", "ck_threads"):
        cur.executemany(f"DELETE FROM {table} WHERE thread_id = ?", params)  # noqa: S608


def delete_rows(cur: sqlite3.Cursor, rows: Sequence[CheckpointRow]) -> None:
    """Delete checkpoints with their writes and metadata index rows (not their blobs)."""
    delete_index(cur, rows)
    keys = [(r.thread_id, r.checkpoint_ns, r.checkpoint_id) for r in rows]
    for table in ("ck_checkpoints", "ck_writes"):
        cur.executemany(
            f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",  # noqa: S608
            keys,
        )


def collect_garbage(
    cur: sqlite3.Cursor,
    core: StorageCore,
    thread_id: str,
    ns: str,
    survivors: Sequence[CheckpointRow],
    heads: Mapping[BlobKey, BlobRow],
) -> None:
    """Delete the blob rows of one namespace that no surviving checkpoint needs."""
    live = core.live_blobs(survivors, heads.values()) if survivors else set()
    doomed = [(thread_id, ns, ch, v) for (ch, v) in heads if (ch, v) not in live]
    cur.executemany(
        "DELETE FROM ck_blobs WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? "
        "AND version = ?",
        doomed,
    )


def refresh_threads(cur: sqlite3.Cursor, thread_ids: Iterable[str]) -> None:
    """Recompute the summaries of threads after rows were deleted or copied in."""
    params = [(t,) for t in dict.fromkeys(thread_ids)]
    cur.executemany(
        "DELETE FROM ck_threads WHERE thread_id = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM ck_checkpoints WHERE thread_id = ?1)",
        params,
    )
    cur.executemany(_REFRESH_THREAD, params)


def keep_last(
    core: StorageCore, rows: Sequence[CheckpointRow], blobs: Mapping[BlobKey, BlobRow], n: int
) -> set[str]:
    """Return the ids one namespace keeps under ``keep_last=n``, DeltaChannel-safe.

    Each of the `n` latest checkpoints is kept with what `keep_for_prune`
    would keep were it the latest (the ancestors its delta channels need).
    """
    ordered = sorted(rows, key=lambda r: r.checkpoint_id, reverse=True)
    keep: set[str] = set()
    for i, row in enumerate(ordered[:n]):
        if "counters_since_delta_snapshot" not in row.metadata:
            keep.add(row.checkpoint_id)  # no delta channel: nothing else to keep
            continue
        keep |= core.keep_for_prune(ordered[i:], blobs, "keep_latest")
    return keep


def prune_thread(
    cur: sqlite3.Cursor,
    core: StorageCore,
    thread_id: str,
    *,
    strategy: str = "keep_latest",
    last: int | None = None,
    ns: str | None = None,
) -> int:
    """Prune one thread (or one namespace of it); return how many checkpoints went.

    ``last=None`` applies `strategy` (LangGraph's ``keep_latest`` or
    ``delete``); an int keeps that many latest checkpoints per namespace.
    """
    rows = thread_rows(cur, thread_id, ns)
    if not rows:
        return 0
    heads = blob_heads(cur, thread_id)
    by_ns: dict[str, list[CheckpointRow]] = defaultdict(list)
    for row in rows:
        by_ns[row.checkpoint_ns].append(row)
    gone = 0
    for space, in_ns in by_ns.items():
        blobs = heads.get(space, {})
        if last is None:
            keep = core.keep_for_prune(in_ns, blobs, strategy)
        else:
            keep = keep_last(core, in_ns, blobs, last)
        doomed = [r for r in in_ns if r.checkpoint_id not in keep]
        if not doomed:
            continue
        delete_rows(cur, doomed)
        survivors = [r for r in in_ns if r.checkpoint_id in keep]
        collect_garbage(cur, core, thread_id, space, survivors, blobs)
        gone += len(doomed)
    if gone:
        refresh_threads(cur, [thread_id])
    return gone


def delete_for_runs(cur: sqlite3.Cursor, core: StorageCore, run_ids: Sequence[str]) -> list[str]:
    """Delete the checkpoints made by some runs; return the threads touched."""
    found = values_join(
        cur,
        [(r,) for r in run_ids],
        _C,
        "ck_checkpoints c ON c.run_id = r.column1",
    )
    doomed = [to_checkpoint(r) for r in found]
    if not doomed:
        return []
    delete_rows(cur, doomed)
    groups = {(r.thread_id, r.checkpoint_ns) for r in doomed}
    threads = sorted({t for t, _ in groups})
    for thread_id in threads:
        heads = blob_heads(cur, thread_id)
        survivors = thread_rows(cur, thread_id)
        for t, ns in groups:
            if t == thread_id:
                left = [r for r in survivors if r.checkpoint_ns == ns]
                collect_garbage(cur, core, thread_id, ns, left, heads.get(ns, {}))
    refresh_threads(cur, threads)
    return threads


# --- copying ------------------------------------------------------------------------------


def copy_rows(
    cur: sqlite3.Cursor,
    core: StorageCore,
    rows: Sequence[CheckpointRow],
    target_id: str,
    now: float,
) -> None:
    """Copy checkpoints with their live blobs and writes to another thread id."""
    by_ns: dict[str, list[CheckpointRow]] = defaultdict(list)
    for row in rows:
        by_ns[row.checkpoint_ns].append(row)
    heads = blob_heads(cur, rows[0].thread_id) if rows else {}
    for ns, in_ns in by_ns.items():
        source = in_ns[0].thread_id
        ns_heads = heads.get(ns, {})
        live = core.live_blobs(in_ns, ns_heads.values())
        blobs = fetch_blobs(cur, [(source, ns, ch, v) for ch, v in live if (ch, v) in ns_heads])
        cur.executemany(
            _UPSERT_BLOB, [blob_params(core.recontext_blob(b, target_id)) for b in blobs]
        )
        for row in in_ns:
            moved = moved_checkpoint(row, target_id)
            replaces = get_row(cur, target_id, ns, row.checkpoint_id)
            insert_checkpoint(cur, moved, replaces)
        writes = fetch_writes(cur, [(source, ns, r.checkpoint_id) for r in in_ns])
        cur.executemany(
            _WRITE_REPLACE, [write_params(core.recontext_write(w, target_id)) for w in writes]
        )
    cur.execute(
        "INSERT INTO ck_threads (thread_id, touched_at) VALUES (?, ?) "
        "ON CONFLICT (thread_id) DO UPDATE SET touched_at = excluded.touched_at",
        (target_id, now),
    )
    refresh_threads(cur, [target_id])


def thread_exists(cur: sqlite3.Cursor, thread_id: str) -> bool:
    """Tell whether a thread has any checkpoint or write."""
    found = cur.execute(
        "SELECT EXISTS (SELECT 1 FROM ck_checkpoints WHERE thread_id = ?1) "
        "OR EXISTS (SELECT 1 FROM ck_writes WHERE thread_id = ?1)",
        (thread_id,),
    ).fetchone()
    return bool(found[0])


def fork(
    cur: sqlite3.Cursor,
    core: StorageCore,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    new_thread_id: str,
    now: float,
) -> str:
    """Copy a checkpoint, its ancestors and their subgraphs to a new thread; return its id.

    Raises:
        ConfigurationError: the new thread exists, or the checkpoint does not.
    """
    if thread_exists(cur, new_thread_id):
        raise ConfigurationError(f"cannot fork into thread {new_thread_id!r}: it exists")
    target = get_row(cur, thread_id, ns, checkpoint_id)
    if target is None:
        raise ConfigurationError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r} to fork")
    copy_rows(cur, core, fork_selection(thread_rows(cur, thread_id), target), new_thread_id, now)
    return target.checkpoint_id


# --- DeltaChannel history ---------------------------------------------------------------------

_ANCESTORS = f"""
WITH RECURSIVE anc(id, depth) AS (
  SELECT ?3, 0
  UNION ALL
  SELECT c.parent_id, anc.depth + 1 FROM anc CROSS JOIN ck_checkpoints c
    ON c.thread_id = ?1 AND c.checkpoint_ns = ?2 AND c.checkpoint_id = anc.id
  WHERE c.parent_id IS NOT NULL AND anc.depth + 1 < ?4
)
SELECT {_C}, anc.depth FROM anc CROSS JOIN ck_checkpoints c
  ON c.thread_id = ?1 AND c.checkpoint_ns = ?2 AND c.checkpoint_id = anc.id
"""  # noqa: S608


def delta_history_rows(
    cur: sqlite3.Cursor,
    core: StorageCore,
    thread_id: str,
    ns: str,
    checkpoint_id: str | None,
    channels: Sequence[str],
) -> tuple[list[HistoryStep], dict[BlobKey, BlobRow], dict[str, list[WriteRow]]]:
    """Fetch what `StorageCore.delta_history` needs, walking the parent chain.

    Ancestors come from a recursive CTE in growing batches, each batch with
    one query for the channel versions it references; the walk stops at the
    batch where every channel found its seed. Then one query each fetches the
    seeds (with delta chains) and the writes of the visited checkpoints.
    """
    target = get_row(cur, thread_id, ns, checkpoint_id)
    ancestors: list[CheckpointRow] = []
    heads: dict[BlobKey, BlobRow] = {}
    seen: set[str] = set()
    start = target.parent_id if target is not None else None
    batch = 32
    steps: list[HistoryStep] = []
    while start is not None and start not in seen:
        found = cur.execute(_ANCESTORS, (thread_id, ns, start, batch)).fetchall()
        found.sort(key=lambda r: r[-1])
        fresh: list[CheckpointRow] = []
        for r in found:
            row = to_checkpoint(r)
            if row.checkpoint_id in seen:  # a loop in the parent chain
                start = None
                break
            seen.add(row.checkpoint_id)
            fresh.append(row)
        else:
            start = fresh[-1].parent_id if len(found) == batch else None
        ancestors += fresh
        keys = []
        for row in fresh:
            skeleton = core.decode_skeleton(row.skeleton, row.checkpoint_id)
            versions = skeleton.get("channel_versions") or {}
            keys += [(thread_id, ns, ch, str(versions[ch])) for ch in channels if ch in versions]
        for blob in fetch_blobs(cur, keys, heads=True):
            heads[(blob.channel, blob.version)] = blob
        steps = core.delta_history_walk(ancestors, heads, channels)
        seeded: set[str] = set()
        for _, _, seeds in steps:
            seeded |= seeds
        if seeded >= set(channels):
            break
        batch = min(batch * 4, 1024)
    seed_keys = []
    for _, skeleton, seeds in steps:
        versions = skeleton.get("channel_versions") or {}
        seed_keys += [(thread_id, ns, ch, str(versions[ch])) for ch in seeds]
    blobs = {(b.channel, b.version): b for b in fetch_blobs(cur, seed_keys)}
    requests = [
        (thread_id, ns, ch, chain, seq)
        for (ch, chain), seq in core.chain_requests(blobs.values()).items()
    ]
    for blob in fetch_chains(cur, requests):
        blobs.setdefault((blob.channel, blob.version), blob)
    writes: dict[str, list[WriteRow]] = defaultdict(list)
    for write in fetch_writes(cur, [(thread_id, ns, row.checkpoint_id) for row, _, _ in steps]):
        writes[write.checkpoint_id].append(write)
    return steps, blobs, writes


# --- summaries and measurement -------------------------------------------------------------


def thread_page(
    cur: sqlite3.Cursor,
    filter: Mapping[str, Any],
    after: tuple[str, str] | None,
    limit: int,
) -> list[tuple[str, str, int, str, str]]:
    """Fetch threads newest first: (thread_id, latest metadata, count, created, updated)."""
    clauses, params = metadata_clauses(filter, "t.thread_id", "''", "t.latest_id")
    where = ["t.root_count > 0", *clauses]
    if after is not None:
        where.append("(t.updated_at, t.thread_id) < (?, ?)")
        params += list(after)
    sql = (
        "SELECT t.thread_id, c.metadata, t.root_count, t.created_at, t.updated_at "  # noqa: S608
        "FROM ck_threads t CROSS JOIN ck_checkpoints c ON c.thread_id = t.thread_id "
        "AND c.checkpoint_ns = '' AND c.checkpoint_id = t.latest_id "
        f"WHERE {' AND '.join(where)} ORDER BY t.updated_at DESC, t.thread_id DESC LIMIT ?"
    )
    return [tuple(r) for r in cur.execute(sql, [*params, limit]).fetchall()]


def storage_bytes(cur: sqlite3.Cursor, thread_id: str | None) -> int:
    """Sum stored bytes the way `MemoryCheckpointer.storage_bytes` counts them."""
    where, params = ("WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
    total = 0
    for expr, table in (
        ("length(skeleton) + length(CAST(metadata AS BLOB)) + 108", "ck_checkpoints"),
        (
            "coalesce(length(payload), 0) + coalesce(length(ops), 0) + length(channel) "
            "+ length(version) + coalesce(length(base), 0) + 16",
            "ck_blobs",
        ),
        ("length(payload) + length(channel) + length(task_id) + 16", "ck_writes"),
    ):
        row = cur.execute(f"SELECT coalesce(sum({expr}), 0) FROM {table} {where}", params)  # noqa: S608
        total += int(row.fetchone()[0])
    return total


def idle_threads(cur: sqlite3.Cursor, cutoff: float) -> list[str]:
    """Return the threads with no checkpoint stored since `cutoff` (unix time)."""
    found = cur.execute("SELECT thread_id FROM ck_threads WHERE touched_at < ?", (cutoff,))
    return [str(r[0]) for r in found.fetchall()]


def still_idle(cur: sqlite3.Cursor, thread_ids: Sequence[str], cutoff: float) -> list[str]:
    """Filter `thread_ids` to those still idle (checked inside the deleting transaction)."""
    found = values_join(
        cur,
        [(t,) for t in thread_ids],
        "t.thread_id",
        "ck_threads t ON t.thread_id = r.column1",
        "WHERE t.touched_at < ?",
        [cutoff],
    )
    return [str(r[0]) for r in found]


def crowded_threads(cur: sqlite3.Cursor, n: int) -> list[str]:
    """Return the threads with a namespace holding more than `n` checkpoints."""
    found = cur.execute(
        "SELECT DISTINCT thread_id FROM (SELECT thread_id FROM ck_checkpoints "
        "GROUP BY thread_id, checkpoint_ns HAVING count(*) > ?)",
        (n,),
    )
    return [str(r[0]) for r in found.fetchall()]


def namespace_size(cur: sqlite3.Cursor, thread_id: str, ns: str) -> int:
    """Count the checkpoints of one namespace of a thread."""
    row = cur.execute(
        "SELECT count(*) FROM ck_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?",
        (thread_id, ns),
    ).fetchone()
    return int(row[0])
