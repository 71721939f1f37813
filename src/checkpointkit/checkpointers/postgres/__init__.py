"""PostgreSQL checkpointers: `PostgresCheckpointer` (sync) and `AsyncPostgresCheckpointer`.

Both run on psycopg 3 (extra ``postgres``): from a connection pool (or a
single connection), or from a connection string with
``from_conn_string(uri, schema=..., max_size=...)``. The async class is the
source; the sync class is generated from it (``make generate``). See
`_async` for how they work and `_schema` for the tables.
"""

from __future__ import annotations

from checkpointkit.errors import MissingDependencyError

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise MissingDependencyError.for_extra("PostgresCheckpointer", "postgres", "psycopg") from exc

from checkpointkit.checkpointers.postgres._async import AsyncPostgresCheckpointer
from checkpointkit.checkpointers.postgres._codec import CheckpointSummary, SweepResult
from checkpointkit.checkpointers.postgres._schema import SCHEMA_VERSION
from checkpointkit.checkpointers.postgres._sync import PostgresCheckpointer

__all__ = [
    "SCHEMA_VERSION",
    "AsyncPostgresCheckpointer",
    "CheckpointSummary",
    "PostgresCheckpointer",
    "SweepResult",
]
