"""The savers a benchmark compares: checkpointkit's and LangGraph's, by backend.

`families()` yields, for each backend available here, a `Family`: sync and
async factories for checkpointkit's saver and for LangGraph's official one on
the same storage (the same SQLite directory, the same PostgreSQL server).
PostgreSQL and Redis come from ``CHECKPOINTKIT_BENCH_POSTGRES_URI`` /
``CHECKPOINTKIT_BENCH_REDIS_URL`` or from throwaway servers started from the
machine's binaries, as the tests do. A backend whose checkpointer or server is
missing is left out, with a note saying why.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from checkpointkit import MemoryCheckpointer

Saver = BaseCheckpointSaver[Any]
Factory = Callable[[], AbstractContextManager[Saver]]
AsyncFactory = Callable[[], AbstractAsyncContextManager[Saver]]


@dataclass
class Family:
    """One backend: checkpointkit's saver and the official one, sync and async."""

    name: str
    ours: Factory
    official: Factory | None
    ours_async: AsyncFactory
    official_async: AsyncFactory | None
    notes: list[str] = field(default_factory=list)
    #: The server's own cost, measured with the bare client (µs by name); None for
    #: embedded backends. A saver's time cannot go below it.
    floors: Callable[[], dict[str, float]] | None = None


@contextlib.contextmanager
def _just(make: Callable[[], Saver]) -> Iterator[Saver]:
    yield make()


def _ajust(make: Callable[[], Saver]) -> AsyncFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Saver]:
        yield make()

    return factory


def _memory() -> Family:
    return Family(
        "memory",
        lambda: _just(MemoryCheckpointer),
        lambda: _just(InMemorySaver),
        _ajust(MemoryCheckpointer),
        _ajust(InMemorySaver),
    )


def _sqlite(workdir: str, notes: list[str]) -> Family | None:
    try:
        from checkpointkit.checkpointers.sqlite import (
            AsyncSQLiteCheckpointer,
            SQLiteCheckpointer,
        )
    except ImportError as exc:
        notes.append(f"sqlite left out: {exc}")
        return None

    def path() -> str:
        return os.path.join(workdir, f"{uuid.uuid4().hex[:8]}.sqlite")

    @contextlib.contextmanager
    def official() -> Iterator[Saver]:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(path(), check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()

    @contextlib.asynccontextmanager
    async def official_async() -> AsyncIterator[Saver]:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(path()) as saver:
            yield saver

    return Family(
        "sqlite",
        lambda: SQLiteCheckpointer.from_conn_string(path()),
        official,
        lambda: AsyncSQLiteCheckpointer.from_conn_string(path()),
        official_async,
        ["sqlite: both on files in one temp directory; checkpointkit WAL + synchronous=NORMAL"],
    )


def _fresh_database(server_uri: str) -> str:
    """Create an empty database on the server; return its URI (isolates each saver)."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
    base, _, _ = server_uri.rpartition("/")
    return f"{base}/{name}"


def _postgres(stack: contextlib.ExitStack, notes: list[str]) -> Family | None:
    try:
        from checkpointkit.checkpointers.postgres import (
            AsyncPostgresCheckpointer,
            PostgresCheckpointer,
        )
    except ImportError as exc:
        notes.append(f"postgres left out: {exc}")
        return None
    server_uri = os.environ.get("CHECKPOINTKIT_BENCH_POSTGRES_URI")
    durability = "the server's own settings"
    if not server_uri:
        try:
            from tests.harness.servers import PostgresServer

            server = PostgresServer(
                durable=True, settings={"fsync": "on", "full_page_writes": "on"}
            )
            server.start()
        except Exception as exc:  # no binaries, no permission: say so, run the rest
            notes.append(f"postgres left out: cannot start a server ({exc})")
            return None
        stack.callback(server.close)
        server_uri = server.uri
        durability = "fsync=on, full_page_writes=on, synchronous_commit=on"

    @contextlib.contextmanager
    def official() -> Iterator[Saver]:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(_fresh_database(server_uri)) as saver:
            saver.setup()
            yield saver

    @contextlib.asynccontextmanager
    async def official_async() -> AsyncIterator[Saver]:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(_fresh_database(server_uri)) as saver:
            await saver.setup()
            yield saver

    def floors() -> dict[str, float]:
        import psycopg

        uri = _fresh_database(server_uri)
        with psycopg.connect(uri, autocommit=True, prepare_threshold=0) as conn:
            conn.execute("CREATE TABLE floor (k int PRIMARY KEY, v bytea)")
            return {
                "round trip (SELECT 1)": _median_us(lambda i: conn.execute("SELECT 1")),
                "one-row INSERT, committed": _median_us(
                    lambda i: conn.execute("INSERT INTO floor VALUES (%s, %s)", (i, b"v" * 100))
                ),
            }

    # Parity with LangGraph's from_conn_string, which prepares every statement
    # (prepare_threshold=0) on an autocommit connection: checkpointkit's default
    # (None: nothing prepared, PgBouncer-safe) is the only setting changed.
    parity = {"prepare_threshold": 0}
    return Family(
        "postgres",
        lambda: PostgresCheckpointer.from_conn_string(_fresh_database(server_uri), **parity),
        official,
        lambda: AsyncPostgresCheckpointer.from_conn_string(_fresh_database(server_uri), **parity),
        official_async,
        floors=floors,
        notes=[
            f"postgres: both savers on one local server ({durability}), over TCP on "
            "127.0.0.1, each in its own database. LangGraph's: from_conn_string defaults "
            "(one autocommit connection, prepare_threshold=0, pipeline mode for writes, "
            "its lock around each call). checkpointkit's: from_conn_string defaults (a pool "
            "of 1-10 autocommit connections, one statement per operation) except "
            "prepare_threshold=0, as LangGraph's; its default prepares nothing "
            "(PgBouncer-safe). Stored bytes: pg_total_relation_size of each saver's own "
            "tables (heap, indexes, TOAST, free-space and visibility maps), the same "
            "query for both"
        ],
    )


def _redis(stack: contextlib.ExitStack, notes: list[str]) -> Family | None:
    try:
        from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
    except ImportError as exc:
        notes.append(f"redis left out: {exc}")
        return None
    url = os.environ.get("CHECKPOINTKIT_BENCH_REDIS_URL")
    persistence = "the server's own settings"
    if not url:
        try:
            from tests.harness.servers import RedisServer

            server = RedisServer()  # like a default cache: no AOF
            server.start()
        except Exception as exc:  # no binaries: say so, run the rest
            notes.append(f"redis left out: cannot start a server ({exc})")
            return None
        stack.callback(server.close)
        url = server.uri
        persistence = "no AOF, no RDB saves"
    server_url = url

    def prefix() -> str:
        return f"bench{uuid.uuid4().hex[:8]}"

    def floors() -> dict[str, float]:
        import redis

        client = redis.Redis.from_url(server_url)
        key = f"{prefix()}:floor"
        try:
            return {
                "round trip (PING)": _median_us(lambda i: client.ping()),
                "one HSETNX": _median_us(lambda i: client.hsetnx(key, str(i), b"v" * 100)),
            }
        finally:
            client.delete(key)
            client.close()

    return Family(
        "redis",
        lambda: RedisCheckpointer.from_conn_string(server_url, prefix=prefix()),
        None,
        lambda: AsyncRedisCheckpointer.from_conn_string(server_url, prefix=prefix()),
        None,
        floors=floors,
        notes=[
            f"redis: local server ({persistence}); no official LangGraph counterpart on plain Redis"
        ],
    )


def _median_us(call: Callable[[int], object], repeats: int = 2000) -> float:
    """Median wall time of ``call(i)`` for i in range(repeats), in microseconds."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


@contextlib.contextmanager
def families(workdir: str) -> Iterator[list[Family]]:
    """Yield every backend family available on this machine."""
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        found = [_memory()]
        for family in (
            _sqlite(workdir, notes),
            _postgres(stack, notes),
            _redis(stack, notes),
        ):
            if family is not None:
                found.append(family)
                notes.extend(family.notes)
        for note in notes:
            print(f"note: {note}")
        print()
        yield found
