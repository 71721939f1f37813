"""The SQLite schema: tables, indexes, connection pragmas and forward migrations.

The schema is versioned by the ``ck_schema_version`` table, one row per
applied migration. `migrate` runs, inside one ``BEGIN IMMEDIATE``
transaction, every migration newer than the stored version, so several
processes opening a new file at once serialise on the write lock and only the
first one creates the tables. A database whose stored version is newer than
`SCHEMA_VERSION` was written by a newer checkpointkit and is refused with
`SchemaVersionError` rather than misread.

Tables (all prefixed ``ck_`` so the file can also hold LangGraph's own tables):

* ``ck_checkpoints``: one row per checkpoint (`CheckpointRow`).
* ``ck_blobs``: one row per stored channel version (`BlobRow`), shared by the
  checkpoints that reference it; list channels as delta chains.
* ``ck_writes``: pending writes (`WriteRow`).
* ``ck_metadata``: one row per top-level metadata key of each checkpoint, the
  value in a canonical form (`_filters`), keyed on ``(key, value,
  checkpoint_id, ...)`` so metadata filters are index lookups with
  parameters only.
* ``ck_threads``: a per-thread summary maintained on write, for
  ``list_threads`` and the idle-thread retention policy.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from checkpointkit.errors import ConfigurationError, SchemaVersionError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "apply_pragmas",
    "default_pragmas",
    "migrate",
    "stored_version",
]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: the statements that bring version - 1 to `version`."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = Migration(
    1,
    "checkpoints, blobs, writes, metadata index and thread summaries",
    (
        """CREATE TABLE ck_checkpoints (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL,
            checkpoint_id TEXT NOT NULL,
            parent_id TEXT,
            skeleton BLOB NOT NULL,
            metadata TEXT NOT NULL,
            run_id TEXT,
            ts TEXT NOT NULL,
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
        )""",
        # list() across the namespaces of one thread, newest first
        "CREATE INDEX ck_checkpoints_thread_order "
        "ON ck_checkpoints (thread_id, checkpoint_id, checkpoint_ns)",
        # list(None) across every thread, newest first
        "CREATE INDEX ck_checkpoints_order "
        "ON ck_checkpoints (checkpoint_id, thread_id, checkpoint_ns)",
        "CREATE INDEX ck_checkpoints_run ON ck_checkpoints (run_id) WHERE run_id IS NOT NULL",
        """CREATE TABLE ck_blobs (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL,
            channel TEXT NOT NULL,
            version TEXT NOT NULL,
            kind INTEGER NOT NULL,
            type TEXT,
            payload BLOB,
            chain TEXT,
            seq INTEGER NOT NULL DEFAULT 0,
            base TEXT,
            ops BLOB,
            length INTEGER NOT NULL DEFAULT 0,
            wrapped INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
        )""",
        # rebuilding a list version reads its chain up to its position
        "CREATE INDEX ck_blobs_chain ON ck_blobs (thread_id, checkpoint_ns, channel, chain, seq) "
        "WHERE chain IS NOT NULL",
        """CREATE TABLE ck_writes (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL,
            checkpoint_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            task_path TEXT NOT NULL,
            channel TEXT NOT NULL,
            type TEXT NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
        )""",
        # The primary key is the filter index; `value` has no declared type
        # (BLOB affinity), so TEXT '1' stays TEXT and never equals REAL 1.0.
        """CREATE TABLE ck_metadata (
            key TEXT NOT NULL,
            value NOT NULL,
            checkpoint_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL,
            PRIMARY KEY (key, value, checkpoint_id, thread_id, checkpoint_ns)
        ) WITHOUT ROWID""",
        """CREATE TABLE ck_threads (
            thread_id TEXT PRIMARY KEY NOT NULL,
            root_count INTEGER NOT NULL DEFAULT 0,
            first_id TEXT,
            created_at TEXT,
            latest_id TEXT,
            updated_at TEXT,
            touched_at REAL NOT NULL
        )""",
        "CREATE INDEX ck_threads_updated ON ck_threads (updated_at, thread_id)",
        "CREATE INDEX ck_threads_touched ON ck_threads (touched_at)",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_V1,)
SCHEMA_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS ck_schema_version (
    version INTEGER PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

# --- pragmas -------------------------------------------------------------------

_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")
_PRAGMA_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRAGMA_VALUE = re.compile(r"^-?[A-Za-z0-9_]+$")


def default_pragmas(*, synchronous: str, timeout: float) -> dict[str, str | int]:
    """Return the pragmas applied to every new connection, in order.

    ``busy_timeout`` comes first so the others wait for a lock instead of
    failing; ``auto_vacuum`` must precede the creation of the first table to
    take effect (it is a no-op on an existing file).
    """
    sync = synchronous.upper() if isinstance(synchronous, str) else synchronous
    if sync not in _SYNCHRONOUS:
        raise ConfigurationError(
            f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, got {synchronous!r}"
        )
    return {
        "busy_timeout": max(0, int(timeout * 1000)),
        "auto_vacuum": "INCREMENTAL",
        "journal_mode": "WAL",
        "synchronous": sync,
        "temp_store": "MEMORY",
        # After a checkpoint, shrink a WAL that one large put grew (64 MiB).
        "journal_size_limit": 64 * 1024 * 1024,
    }


def check_pragmas(pragmas: Mapping[str, str | int]) -> dict[str, str | int]:
    """Validate pragma names and values (they cannot be bound as parameters).

    Raises:
        ConfigurationError: a name or value is not a plain word or integer.
    """
    checked: dict[str, str | int] = {}
    for name, value in pragmas.items():
        if not isinstance(name, str) or not _PRAGMA_WORD.match(name):
            raise ConfigurationError(f"invalid pragma name {name!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigurationError(f"pragma {name} must be a word or an int, got {value!r}")
        if not _PRAGMA_VALUE.match(str(value)):
            raise ConfigurationError(f"invalid value {value!r} for pragma {name}")
        checked[name] = value
    return checked


def apply_pragmas(conn: sqlite3.Connection, pragmas: Mapping[str, str | int]) -> None:
    """Apply validated `pragmas` to a connection, in order."""
    for name, value in pragmas.items():
        # Names and values were checked by `check_pragmas`: plain words only.
        conn.execute(f"PRAGMA {name}={value}").fetchall()


# --- versions and migrations ---------------------------------------------------


def stored_version(conn: sqlite3.Connection | sqlite3.Cursor) -> int:
    """Return the schema version stored in the database (0 when there is none)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ck_schema_version'"
    ).fetchone()
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM ck_schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check_version(version: int, latest: int = SCHEMA_VERSION) -> None:
    """Refuse a database written by a newer schema.

    Raises:
        SchemaVersionError: `version` is newer than `latest`.
    """
    if version > latest:
        raise SchemaVersionError(
            f"the database has schema version {version}, newer than version {latest} that "
            "this checkpointkit understands; upgrade checkpointkit to open it"
        )


def migrate(
    cur: sqlite3.Connection | sqlite3.Cursor, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the schema up to the last of `migrations`; return the version reached.

    Must run inside a write transaction (the caller's ``BEGIN IMMEDIATE``), so
    a failed migration leaves the database as it was.

    Raises:
        SchemaVersionError: the database is newer than the last migration.
        ConfigurationError: `migrations` are not numbered 1, 2, 3...
    """
    for expected, step in enumerate(migrations, start=1):
        if step.version != expected:
            raise ConfigurationError(
                f"migration {step.description!r} has version {step.version}, expected {expected}"
            )
    latest = migrations[-1].version if migrations else 0
    cur.execute(_VERSION_TABLE)
    current = stored_version(cur)
    check_version(current, latest)
    for step in migrations[current:]:
        for statement in step.statements:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO ck_schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (step.version, step.description, datetime.now(timezone.utc).isoformat()),
        )
        current = step.version
    return current
