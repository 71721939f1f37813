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

import functools
import itertools
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
    "fetch_checkpoint",
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


# The Python types a row of each table may hold, column by column: a stored
# value of another type (text where bytes belong, say) is corrupt data. A
# row is checked with one lookup of its type signature in a precomputed set.
_STR, _INT, _BYTES, _NONE = str, int, bytes, type(None)


def _signatures(*columns: tuple[type, ...]) -> frozenset[tuple[type, ...]]:
    return frozenset(itertools.product(*columns))


_CHECKPOINT_TYPES = _signatures(
    (_STR,), (_STR,), (_STR,), (_STR, _NONE), (_BYTES,), (_STR,), (_STR, _NONE), (_STR,)
)
_BLOB_TYPES = _signatures(
    (_STR,), (_STR,), (_STR,), (_STR,), (_INT,), (_STR, _NONE), (_BYTES, _NONE), (_STR, _NONE),
    (_INT,), (_STR, _NONE), (_BYTES, _NONE), (_INT,), (_INT, _NONE, _STR, _BYTES, float),
)  # fmt: skip
_WRITE_TYPES = _signatures(
    (_STR,), (_STR,), (_STR,), (_STR,), (_STR,), (_INT,), (_STR,), (_STR,), (_BYTES,)
)
_KINDS = tuple(BlobKind)


def to_checkpoint(r: Sequence[Any]) -> CheckpointRow:
    """Build a `CheckpointRow` from a row of `CHECKPOINT_COLS`."""
    if tuple(map(type, r[:8])) not in _CHECKPOINT_TYPES:
        raise _corrupt("checkpoint", r)
    return CheckpointRow(*r[:8])


def to_blob(r: Sequence[Any]) -> BlobRow:
    """Build a `BlobRow` from a row of `BLOB_COLS` (or `BLOB_HEAD_COLS`)."""
    if tuple(map(type, r)) not in _BLOB_TYPES:
        raise _corrupt("blob", r)
    kind = r[4]
    if not 0 <= kind < len(_KINDS):
        raise _corrupt("blob", r, ValueError(f"{kind} is not a valid BlobKind"))
    return BlobRow(
        r[0], r[1], r[2], r[3], _KINDS[kind], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
        bool(r[12]),
    )  # fmt: skip


def to_write(r: Sequence[Any]) -> WriteRow:
    """Build a `WriteRow` from a row of `WRITE_COLS`."""
    if tuple(map(type, r)) not in _WRITE_TYPES:
        raise _corrupt("write", r)
    return WriteRow(*r)


# --- batched reads -----------------------------------------------------------------


def _max_rows(cur: sqlite3.Cursor, width: int, extra: int = 0) -> int:
    getlimit = getattr(cur.connection, "getlimit", None)  # Python >= 3.11
    limit = getlimit(_LIMIT_VARIABLE_NUMBER) if getlimit else 999
    return max(1, (min(limit, 30000) - extra) // width)


def _chunks(keys: Sequence[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


@functools.lru_cache(maxsize=1024)
def _values_sql(select: str, on: str, tail: str, width: int, n: int) -> str:
    row_marks = "(" + ", ".join("?" * width) + ")"
    return (
        f"SELECT {select} FROM (VALUES {', '.join([row_marks] * n)}) AS r "  # noqa: S608
        f"CROSS JOIN {on} {tail}"
    )


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
    `tail_params` bind the placeholders of `on` and `tail`, in that order.
    The statement text is built once per shape (and SQLite's statement
    cache keeps it compiled).
    """
    unique = list(dict.fromkeys(keys))
    if not unique:
        return []
    width = len(unique[0])
    out: list[Any] = []
    for chunk in _chunks(unique, _max_rows(cur, width, len(tail_params))):
        sql = _values_sql(select, on, tail, width, len(chunk))
        out += cur.execute(sql, [*(v for key in chunk for v in key), *tail_params]).fetchall()
    return out


_BLOB_SELECT = select_cols(BLOB_COLS, "b")
_BLOB_HEAD_SELECT = select_cols(BLOB_HEAD_COLS, "b")
_BLOB_KEY_ON = (
    "ck_blobs AS b ON b.thread_id = ? AND b.checkpoint_ns = ? "
    "AND b.channel = r.column1 AND b.version = r.column2"
)


def fetch_blobs(
    cur: sqlite3.Cursor, keys: Iterable[tuple[str, str, str, str]], *, heads: bool = False
) -> list[BlobRow]:
    """Fetch the blob rows of ``(thread_id, ns, channel, version)`` keys that exist.

    Keys are grouped by thread and namespace, so each lookup binds only its
    channel and version.
    """
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for thread_id, ns, channel, version in keys:
        groups.setdefault((thread_id, ns), []).append((channel, version))
    select = _BLOB_HEAD_SELECT if heads else _BLOB_SELECT
    rows: list[Any] = []
    for group, pairs in groups.items():
        rows += values_join(cur, pairs, select, _BLOB_KEY_ON, tail_params=group)
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


_WRITE_SELECT = select_cols(WRITE_COLS, "w")

# One checkpoint row (by id, or the namespace's latest) and its writes, in one
# statement: the checkpoint row tagged 0, padded to the writes' width.
_CHECKPOINT_SELECT = select_cols(CHECKPOINT_COLS, "c")
_ONE_BY_ID = f"""
SELECT 0, {_CHECKPOINT_SELECT}, NULL FROM ck_checkpoints AS c
WHERE c.thread_id = ?1 AND c.checkpoint_ns = ?2 AND c.checkpoint_id = ?3
UNION ALL
SELECT 1, {_WRITE_SELECT} FROM ck_writes AS w
WHERE w.thread_id = ?1 AND w.checkpoint_ns = ?2 AND w.checkpoint_id = ?3
"""  # noqa: S608
_ONE_LATEST = f"""
WITH c AS MATERIALIZED (
    SELECT * FROM ck_checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2
    ORDER BY checkpoint_id DESC LIMIT 1
)
SELECT 0, {_CHECKPOINT_SELECT}, NULL FROM c
UNION ALL
SELECT 1, {_WRITE_SELECT} FROM c CROSS JOIN ck_writes AS w
  ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
 AND w.checkpoint_id = c.checkpoint_id
"""  # noqa: S608


def fetch_checkpoint(
    cur: sqlite3.Cursor, thread_id: str, ns: str, checkpoint_id: str | None
) -> tuple[CheckpointRow | None, list[WriteRow]]:
    """Fetch one checkpoint row (the namespace's latest when no id is given) and its writes."""
    if checkpoint_id is None:
        found = cur.execute(_ONE_LATEST, (thread_id, ns)).fetchall()
    else:
        found = cur.execute(_ONE_BY_ID, (thread_id, ns, checkpoint_id)).fetchall()
    if not found:
        return None, []
    row: CheckpointRow | None = None
    writes = []
    for r in found:
        if r[0] == 0:
            row = to_checkpoint(r[1:])
        else:
            writes.append(to_write(r[1:]))
    return row, writes


_WRITES_OF = (
    f"SELECT {_WRITE_SELECT} FROM ck_writes AS w "  # noqa: S608
    "WHERE w.thread_id = ? AND w.checkpoint_ns = ? AND w.checkpoint_id = ?"
)


def fetch_writes(cur: sqlite3.Cursor, keys: Iterable[tuple[str, str, str]]) -> list[WriteRow]:
    """Fetch the pending writes of ``(thread_id, ns, checkpoint_id)`` keys."""
    unique = list(dict.fromkeys(keys))
    if len(unique) == 1:  # a get_tuple: a plain primary-key prefix lookup
        rows = cur.execute(_WRITES_OF, unique[0]).fetchall()
    else:
        rows = values_join(
            cur,
            unique,
            _WRITE_SELECT,
            "ck_writes AS w ON w.thread_id = r.column1 AND w.checkpoint_ns = r.column2 "
            "AND w.checkpoint_id = r.column3",
        )
    return [to_write(r) for r in rows]
