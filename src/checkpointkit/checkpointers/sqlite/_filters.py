"""Metadata filters as index lookups: canonical values and parameter-only SQL.

Each checkpoint's top-level metadata keys are stored in ``ck_metadata``, a
``WITHOUT ROWID`` table whose primary key *is* the index: ``(key, value,
checkpoint_id, thread_id, checkpoint_ns)``. A filter ``{key: value}`` is an
``EXISTS`` probe on that key, or, across all threads, a walk of it in id
order, with keys and values bound as parameters: no SQL text is ever built
from a user string, so a key like ``"x') OR 1=1 --"`` is just a key that no
checkpoint has. Rows are found again for deletion by recomputing them from
the checkpoint's stored metadata, so the table needs no second index.

The canonical form makes values that Python finds equal (``1 == 1.0 ==
True``, ``{"a": [1]} == {"a": [1.0]}``) store the same SQL value, so the
index never misses a match. It may, rarely, let through a non-match (two
integers beyond float precision, a hash collision), which is why callers
re-check every candidate with `metadata_matches`, exactly as the memory
checkpointer does:

* ``bool``/``int``/``float`` -> REAL (NaN, which SQLite stores as NULL, and
  ``None`` -> tagged BLOBs, as primary key columns cannot be NULL);
* a string of up to 64 characters -> TEXT as is, a longer one (or one with a
  lone surrogate, which SQLite text cannot hold) -> a BLOB hash;
* a list or dict -> a BLOB hash of its canonical JSON (numbers as floats,
  keys sorted). TEXT, REAL and BLOB never compare equal in SQLite.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from checkpointkit.checkpointers._rows import CheckpointRow

__all__ = [
    "canonical",
    "delete_index",
    "index_rows",
    "metadata_clauses",
    "storable_key",
    "value_test",
    "write_index",
]

_MAX_TEXT = 64
_NONE = b"0"  # BLOB tags: one byte, then nothing or a 16-byte digest
_NAN = b"n"
_LONG_TEXT = b"s"
_JSON = b"j"

SqlValue = float | str | bytes


def _as_float(value: bool | int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.copysign(math.inf, value)


def _number(value: bool | int | float) -> float | bytes:
    number = _as_float(value)
    return _NAN if math.isnan(number) else number


def _normal(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return _as_float(value)  # json.dumps writes NaN and Infinity
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _digest(tag: bytes, text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return tag + hashlib.blake2b(raw, digest_size=16).digest()


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: SQLite text cannot hold it
        return False
    return True


def storable_key(key: str) -> str:
    """Return a metadata key as SQLite text (lone surrogates escaped, NUL-prefixed)."""
    return key if _utf8(key) else "\x00" + json.dumps(key)


def canonical(value: Any) -> SqlValue:
    """Return the SQL value a metadata value is indexed under."""
    if value is None:
        return _NONE
    if isinstance(value, (bool, int, float)):
        return _number(value)
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT and _utf8(value) else _digest(_LONG_TEXT, value)
    if not value and isinstance(value, (Mapping, list, tuple)):  # LangGraph's parents={}
        return _EMPTY_OBJECT if isinstance(value, Mapping) else _EMPTY_ARRAY
    text = json.dumps(_normal(value), sort_keys=True, ensure_ascii=True, default=repr)
    return _digest(_JSON, text)


_EMPTY_OBJECT = _digest(_JSON, "{}")
_EMPTY_ARRAY = _digest(_JSON, "[]")


def index_rows(metadata: Mapping[str, Any]) -> list[tuple[str, SqlValue]]:
    """Return the ``(key, canonical value)`` rows of one checkpoint's metadata."""
    return [(storable_key(str(key)), canonical(value)) for key, value in metadata.items()]


def _rows_of(row: CheckpointRow) -> list[tuple[str, SqlValue, str, str, str]] | None:
    try:
        metadata = json.loads(row.metadata)
    except ValueError:
        return None
    if not isinstance(metadata, dict):
        return None
    return [
        (key, value, row.checkpoint_id, row.thread_id, row.checkpoint_ns)
        for key, value in index_rows(metadata)
    ]


def write_index(cur: sqlite3.Cursor, row: CheckpointRow) -> None:
    """Index the metadata of a stored checkpoint row."""
    rows = _rows_of(row)
    if rows:
        cur.executemany(
            "INSERT OR REPLACE INTO ck_metadata "
            "(key, value, checkpoint_id, thread_id, checkpoint_ns) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def delete_index(cur: sqlite3.Cursor, rows: Iterable[CheckpointRow]) -> None:
    """Remove the index rows of checkpoints, recomputed from their stored metadata."""
    exact: list[tuple[str, SqlValue, str, str, str]] = []
    for row in rows:
        found = _rows_of(row)
        if found is None:  # unreadable metadata: find its rows the slow way
            cur.execute(
                "DELETE FROM ck_metadata WHERE checkpoint_id = ? AND thread_id = ? "
                "AND checkpoint_ns = ?",
                (row.checkpoint_id, row.thread_id, row.checkpoint_ns),
            )
        else:
            exact += found
    cur.executemany(
        "DELETE FROM ck_metadata WHERE key = ? AND value = ? AND checkpoint_id = ? "
        "AND thread_id = ? AND checkpoint_ns = ?",
        exact,
    )


def value_test(alias: str, key: str, value: Any) -> tuple[str, list[Any]]:
    """Return the test that row `alias` of ``ck_metadata`` holds ``key: value``."""
    return f"{alias}.key = ? AND {alias}.value = ?", [storable_key(key), canonical(value)]


def metadata_clauses(
    filter: Mapping[str, Any], thread: str, ns: str, checkpoint: str
) -> tuple[list[str], list[Any]]:
    """Return one ``EXISTS`` clause per filter key, and their parameters.

    Args:
        filter: A validated filter (`validate_filter`).
        thread: SQL expression (fixed by the caller, never user input) for
            the thread id of the checkpoint each clause tests.
        ns: Likewise for its namespace.
        checkpoint: Likewise for its checkpoint id.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filter.items():
        test, values = value_test("m", key, value)
        clauses.append(
            f"EXISTS (SELECT 1 FROM ck_metadata m WHERE {test} AND "  # noqa: S608
            f"m.checkpoint_id = {checkpoint} AND m.thread_id = {thread} "
            f"AND m.checkpoint_ns = {ns})"
        )
        params += values
    return clauses, params
