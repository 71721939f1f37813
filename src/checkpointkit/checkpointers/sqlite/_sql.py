"""Rows to SQL parameters and back, and the batched reads every operation uses.

The storage core decides what a row holds; this module only maps its fields
to columns. Reads of many keys at once (the blobs of a page of checkpoints,
their delta chains, their writes) join a ``VALUES`` list of bound parameters
to the table, so one statement fetches them all through the primary key,
whatever the number of keys (split only past SQLite's variable limit). A
stored value of the wrong type raises `CorruptDataError` instead of turning
into a wrong checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.errors import CorruptDataError

__all__ = [
    "BLOB_COLS",
    "CHECKPOINT_COLS",
    "WRITE_COLS",
    "blob_params",
    "checkpoint_params",
    "fetch_blobs",
    "fetch_chains",
    "fetch_writes",
    "select_cols",
    "storable_json",
    "to_blob",
    "to_checkpoint",
    "to_write",
    "values_join",
    "write_params",
]

CHECKPOINT_COLS = (
    "thread_id", "checkpoint_ns", "checkpoint_id", "parent_id", "skeleton", "metadata",
    "run_id", "ts",
)  # fmt: skip
BLOB_COLS = (
    "thread_id", "checkpoint_ns", "channel", "version", "kind", "type", "payload", "chain",
    "seq", "base", "ops", "length", "wrapped",
)  # fmt: skip
_LIMIT_VARIABLE_NUMBER = 9  # sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER (Python >= 3.11)

# Blob columns without the payloads: enough for garbage collection and pruning.
BLOB_HEAD_COLS = tuple("NULL" if c in ("payload", "ops") else c for c in BLOB_COLS)
WRITE_COLS = (
    "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "task_path", "idx", "channel",
    "type", "payload",
)  # fmt: skip


def select_cols(cols: Sequence[str], alias: str) -> str:
    """Return ``alias.col, ...`` (columns are constants of this module)."""
    return ", ".join(c if c == "NULL" else f"{alias}.{c}" for c in cols)


def insert_sql(table: str, cols: Sequence[str], verb: str = "INSERT") -> str:
    """Return an insert statement for constant `table` and `cols`."""
    marks = ", ".join("?" * len(cols))
    return f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({marks})"


# --- rows -> parameters ---------------------------------------------------------


def storable_json(text: str) -> str:
    """Return JSON text SQLite can store: lone surrogates escaped, same value."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(json.loads(text), ensure_ascii=True)
    return text


def checkpoint_params(row: CheckpointRow) -> tuple[Any, ...]:
    return (
        row.thread_id, row.checkpoint_ns, row.checkpoint_id, row.parent_id, row.skeleton,
        storable_json(row.metadata), row.run_id, row.ts,
    )  # fmt: skip


def blob_params(b: BlobRow) -> tuple[Any, ...]:
    return (
        b.thread_id, b.checkpoint_ns, b.channel, b.version, int(b.kind), b.type, b.payload,
        b.chain, b.seq, b.base, b.ops, b.length, int(b.wrapped),
    )  # fmt: skip


def write_params(w: WriteRow) -> tuple[Any, ...]:
    return (
        w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx,
        w.channel, w.type, w.payload,
    )  # fmt: skip


# --- SQL rows -> rows -------------------------------------------------------------


def _corrupt(what: str, r: Sequence[Any], exc: Exception | None = None) -> CorruptDataError:
    where = ", ".join(repr(v) for v in r[:3])
    return CorruptDataError(f"stored {what} row ({where}) is malformed: {exc or 'bad column type'}")


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _opt_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _opt_bytes(value: Any) -> bool:
    return value is None or isinstance(value, bytes)


def to_checkpoint(r: Sequence[Any]) -> CheckpointRow:
    """Build a `CheckpointRow` from a row of `CHECKPOINT_COLS`."""
    tid, ns, cid, parent, skeleton, metadata, run_id, ts = r[:8]
    if not (
        _text(tid) and _text(ns) and _text(cid) and _opt_text(parent)
        and isinstance(skeleton, bytes) and _text(metadata) and _opt_text(run_id) and _text(ts)
    ):  # fmt: skip
        raise _corrupt("checkpoint", r)
    return CheckpointRow(tid, ns, cid, parent, skeleton, metadata, run_id, ts)


def to_blob(r: Sequence[Any]) -> BlobRow:
    """Build a `BlobRow` from a row of `BLOB_COLS` (or `BLOB_HEAD_COLS`)."""
    tid, ns, channel, version, kind, type_, payload, chain, seq, base, ops, length, wrapped = r
    try:
        blob_kind = BlobKind(kind)
    except ValueError as exc:
        raise _corrupt("blob", r, exc) from exc
    if not (
        _text(tid) and _text(ns) and _text(channel) and _text(version) and _opt_text(type_)
        and _opt_bytes(payload) and _opt_text(chain) and isinstance(seq, int)
        and _opt_text(base) and _opt_bytes(ops) and isinstance(length, int)
    ):  # fmt: skip
        raise _corrupt("blob", r)
    return BlobRow(
        tid, ns, channel, version, blob_kind, type_, payload, chain, seq, base, ops, length,
        bool(wrapped),
    )  # fmt: skip


def to_write(r: Sequence[Any]) -> WriteRow:
    """Build a `WriteRow` from a row of `WRITE_COLS`."""
    tid, ns, cid, task_id, task_path, idx, channel, type_, payload = r
    if not (
        _text(tid) and _text(ns) and _text(cid) and _text(task_id) and _text(task_path)
        and isinstance(idx, int) and _text(channel) and _text(type_)
        and isinstance(payload, bytes)
    ):  # fmt: skip
        raise _corrupt("write", r)
    return WriteRow(tid, ns, cid, task_id, task_path, idx, channel, type_, payload)


# --- batched reads -----------------------------------------------------------------


def _max_rows(cur: sqlite3.Cursor, width: int, extra: int = 0) -> int:
    getlimit = getattr(cur.connection, "getlimit", None)  # Python >= 3.11
    limit = getlimit(_LIMIT_VARIABLE_NUMBER) if getlimit else 999
    return max(1, (min(limit, 30000) - extra) // width)


def _chunks(keys: Sequence[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def values_join(
    cur: sqlite3.Cursor,
    keys: Iterable[tuple[Any, ...]],
    select: str,
    on: str,
    tail: str = "",
    tail_params: Sequence[Any] = (),
) -> list[Any]:
    """Run ``SELECT {select} FROM (VALUES ...) AS r CROSS JOIN {on} {tail}`` over `keys`.

    The ``VALUES`` rows are the keys (columns ``r.column1``...). ``CROSS
    JOIN`` keeps them the outer loop, so each key is an index lookup.
    """
    unique = list(dict.fromkeys(keys))
    if not unique:
        return []
    width = len(unique[0])
    row_marks = "(" + ", ".join("?" * width) + ")"
    out: list[Any] = []
    for chunk in _chunks(unique, _max_rows(cur, width, len(tail_params))):
        sql = (
            f"SELECT {select} FROM (VALUES {', '.join([row_marks] * len(chunk))}) AS r "  # noqa: S608
            f"CROSS JOIN {on} {tail}"
        )
        out += cur.execute(sql, [*(v for key in chunk for v in key), *tail_params]).fetchall()
    return out


def fetch_blobs(
    cur: sqlite3.Cursor, keys: Iterable[tuple[str, str, str, str]], *, heads: bool = False
) -> list[BlobRow]:
    """Fetch the blob rows of ``(thread_id, ns, channel, version)`` keys that exist."""
    cols = BLOB_HEAD_COLS if heads else BLOB_COLS
    rows = values_join(
        cur,
        keys,
        select_cols(cols, "b"),
        "ck_blobs AS b ON b.thread_id = r.column1 AND b.checkpoint_ns = r.column2 "
        "AND b.channel = r.column3 AND b.version = r.column4",
    )
    return [to_blob(r) for r in rows]


def fetch_chains(
    cur: sqlite3.Cursor, requests: Iterable[tuple[str, str, str, str, int]]
) -> list[BlobRow]:
    """Fetch chain rows for ``(thread_id, ns, channel, chain, max seq)`` requests."""
    rows = values_join(
        cur,
        requests,
        select_cols(BLOB_COLS, "b"),
        "ck_blobs AS b ON b.thread_id = r.column1 AND b.checkpoint_ns = r.column2 "
        "AND b.channel = r.column3 AND b.chain = r.column4 AND b.seq <= r.column5",
    )
    return [to_blob(r) for r in rows]


def fetch_writes(cur: sqlite3.Cursor, keys: Iterable[tuple[str, str, str]]) -> list[WriteRow]:
    """Fetch the pending writes of ``(thread_id, ns, checkpoint_id)`` keys."""
    rows = values_join(
        cur,
        keys,
        select_cols(WRITE_COLS, "w"),
        "ck_writes AS w ON w.thread_id = r.column1 AND w.checkpoint_ns = r.column2 "
        "AND w.checkpoint_id = r.column3",
    )
    return [to_write(r) for r in rows]
