"""The SQLite checkpointer: LangGraph checkpoints in one SQLite file, sync and async.

`SQLiteCheckpointer` and `AsyncSQLiteCheckpointer` are one implementation
(`_saver`) over the shared storage core: list channels stored as deltas,
values stored once per version, ``list`` streamed page by page with metadata
filters answered from an index, safe with many threads and processes writing
one file (WAL, ``BEGIN IMMEDIATE``, typed lock timeouts, concurrent puts of a
process committed together by `_writes`, an optional single-writer guard), a
versioned schema (`_schema`) and a retention policy (``ttl``, ``keep_last``,
`sweep`).
"""

from __future__ import annotations

from checkpointkit.checkpointers.sqlite._retention import SweepResult
from checkpointkit.checkpointers.sqlite._saver import AsyncSQLiteCheckpointer, SQLiteCheckpointer
from checkpointkit.checkpointers.sqlite._schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "AsyncSQLiteCheckpointer", "SQLiteCheckpointer", "SweepResult"]
