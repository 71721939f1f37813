"""Round trips per operation, counted from libpq's own protocol trace.

``PQtrace`` logs every protocol message of a connection; the server sends one
``ReadyForQuery`` at the end of each round trip (a ``Sync`` in the extended
protocol, a simple query), so counting them counts round trips, whatever
the statements are.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import pq

from checkpointkit.checkpointers.postgres import PostgresCheckpointer
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run, msg


@pytest.fixture
def traced(
    postgres_uri: str, schema: str
) -> Iterator[tuple[PostgresCheckpointer, psycopg.Connection[Any]]]:
    with psycopg.connect(postgres_uri, autocommit=True, prepare_threshold=None) as conn:
        saver = PostgresCheckpointer(conn, schema=schema)
        saver.setup()
        yield saver, conn


def round_trips(conn: psycopg.Connection[Any], operation: Callable[[], object]) -> int:
    with tempfile.TemporaryFile("w+") as log:
        conn.pgconn.trace(log.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            operation()
        finally:
            conn.pgconn.untrace()
        log.seek(0)
        return sum(1 for line in log if line.startswith("B") and "\tReadyForQuery" in line)


def test_each_operation_is_one_round_trip(
    traced: tuple[PostgresCheckpointer, psycopg.Connection[Any]],
) -> None:
    saver, conn = traced
    run = Run(saver, new_thread())
    messages: list[Any] = []
    for i in range(5):
        messages = [*messages, msg(i)]
        run.step(messages=messages, count=i)
    messages = [*messages, msg(5)]
    assert round_trips(conn, lambda: run.step(messages=messages, count=5)) == 1  # a delta

    head = config(run.thread_id, checkpoint_id=run.head)
    writes = [("messages", [msg(6)]), ("count", 6)]
    assert round_trips(conn, lambda: saver.put_writes(head, writes, "task", "~t")) == 1

    got: list[Any] = []
    assert round_trips(conn, lambda: got.append(saver.get_tuple(config(run.thread_id)))) == 1
    assert got[0].checkpoint["channel_values"]["messages"] == messages
    assert len(got[0].pending_writes) == 2

    # an old version: its delta chain comes back in the same statement
    old = config(run.thread_id, checkpoint_id=run.history[2][0])
    assert round_trips(conn, lambda: got.append(saver.get_tuple(old))) == 1
    assert got[1].checkpoint["channel_values"] == run.history[2][1]

    listed: list[Any] = []
    assert round_trips(conn, lambda: listed.extend(saver.list(config(run.thread_id)))) == 1
    assert len(listed) == 6

    history = lambda: saver.get_delta_channel_history(config=head, channels=["count"])  # noqa: E731
    assert round_trips(conn, history) == 1


def test_list_reads_one_query_per_page(postgres_uri: str, schema: str) -> None:
    with psycopg.connect(postgres_uri, autocommit=True, prepare_threshold=None) as conn:
        saver = PostgresCheckpointer(conn, schema=schema, page_size=4)
        run = Run(saver, new_thread())
        for i in range(10):
            run.step(count=i)
        listed: list[Any] = []
        # pages of 4, 4, 2: the short page says the list is over
        assert round_trips(conn, lambda: listed.extend(saver.list(config(run.thread_id)))) == 3
        assert [t.checkpoint["channel_values"]["count"] for t in listed] == list(range(9, -1, -1))
        limited = lambda: listed.extend(saver.list(config(run.thread_id), limit=3))  # noqa: E731
        assert round_trips(conn, limited) == 1


def test_no_server_side_prepared_statements_by_default(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, min_size=1, max_size=1
    ) as saver:
        run = Run(saver, new_thread())
        for i in range(8):
            run.step(count=i)
            saver.get_tuple(config(run.thread_id))
        pool = saver._pool
        assert pool is not None
        with pool.connection() as conn:
            assert conn.prepare_threshold is None
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            assert row == (0,)


def test_cached_lists_spare_the_delta_chain(
    traced: tuple[PostgresCheckpointer, psycopg.Connection[Any]],
) -> None:
    saver, conn = traced
    run = Run(saver, new_thread())
    messages: list[Any] = []
    for i in range(30):
        messages = [*messages, msg(i)]
        run.step(messages=messages)

    def read() -> None:
        tup = saver.get_tuple(config(run.thread_id))
        assert tup is not None
        assert tup.checkpoint["channel_values"]["messages"] == messages

    # this process stored the latest list: the chain of 30 deltas is not sent
    assert round_trips(conn, read) == 1
    saver._core.forget()  # the storage core's copy is gone (evicted, say)
    assert round_trips(conn, read) == 2  # read again, with the chain this time
    assert round_trips(conn, read) == 1  # and the rebuilt list is cached again
