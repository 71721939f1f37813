"""Translate psycopg errors into checkpointkit's, and tell which ones a retry can fix.

The saver runs every operation through one retry loop. A failure is:

* a *disconnect* (the server restarted, an idle connection was cut, the pool
  cannot hand out a connection in time): retried on a fresh connection when
  the operation is idempotent, else `BackendUnavailableError`;
* a *conflict* (deadlock, serialization failure): PostgreSQL rolled the
  transaction back, so an idempotent operation simply runs again;
* a lock timeout (``lock_timeout`` expired): `LockTimeoutError`;
* a put refused by the single-writer guard (`newest_id` tells): the saver
  raises `WriteConflictError` with the put's own ids;
* missing tables or functions with auto-setup turned off (or tables of an
  older schema version): `ConfigurationError`;
* anything else: the psycopg error itself, unchanged.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from checkpointkit.checkpointers.postgres._functions import WRITE_CONFLICT
from checkpointkit.errors import (
    BackendUnavailableError,
    CheckpointKitError,
    ConfigurationError,
    LockTimeoutError,
    SchemaVersionError,
)

__all__ = [
    "is_conflict",
    "is_disconnect",
    "newest_id",
    "not_a_connection",
    "schema_too_new",
    "translate",
    "unreachable",
]

# connection_exception (class 08), admin/crash shutdown, cannot connect now
_DISCONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})
_CONFLICT_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def is_disconnect(exc: BaseException) -> bool:
    """Tell whether `exc` means the connection (or any connection) was unusable."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    # Client-side failures (socket closed, server gone) carry no SQLSTATE.
    return state is None or state.startswith("08") or state in _DISCONNECT_STATES


def is_conflict(exc: BaseException) -> bool:
    """Tell whether PostgreSQL rolled the transaction back for another transaction's sake."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _CONFLICT_STATES


def newest_id(exc: psycopg.Error) -> str | None:
    """Return the newest checkpoint id of a put the single-writer guard refused, else None."""
    if exc.sqlstate != WRITE_CONFLICT:
        return None
    return exc.diag.message_detail or ""


def unreachable(exc: BaseException) -> BackendUnavailableError:
    """Return the error for a server that cannot be reached or dropped the connection."""
    return BackendUnavailableError(
        f"PostgreSQL is unreachable or dropped the connection ({exc}); check that the "
        "server is up, or raise the saver's retry_timeout to wait longer for it"
    )


def not_a_connection(owner: str, conn: object, expected: str) -> ConfigurationError:
    """Return the error for a saver given something that is not a connection or pool."""
    return ConfigurationError(f"{owner} needs {expected}, got {type(conn).__name__}")


def schema_too_new(schema: str, prefix: str, found: int, known: int) -> SchemaVersionError:
    """Return the error for tables stamped by a newer checkpointkit."""
    return SchemaVersionError(
        f"tables {schema}.{prefix}* are at schema version {found}, written by a newer "
        f"checkpointkit than this one (which knows versions up to {known}); upgrade "
        "checkpointkit to use them"
    )


def translate(exc: psycopg.Error) -> CheckpointKitError | None:
    """Return the checkpointkit error for a psycopg error, or None to re-raise it as is."""
    if is_disconnect(exc):
        return unreachable(exc)
    if exc.sqlstate == "55P03":
        return LockTimeoutError(
            f"PostgreSQL gave up waiting for a lock ({exc}); another session holds it, "
            "retry later or raise lock_timeout"
        )
    if exc.sqlstate in {"42P01", "3F000"}:  # undefined_table, invalid_schema_name
        return ConfigurationError(
            f"checkpointkit's tables are missing ({exc}); call setup() once, or create the "
            "saver with auto_setup=True"
        )
    if exc.sqlstate == "42883":  # undefined_function: tables of schema version 1
        return ConfigurationError(
            f"checkpointkit's functions are missing ({exc}); the tables are older than "
            "this checkpointkit: call setup() once to migrate them, or create the saver "
            "with auto_setup=True"
        )
    return None
