"""The single-writer guard under real concurrency: racing puts on one parent, one wins.

The contract suite checks the guard's rules one put at a time; here many
connections put at once on the same parent (READ COMMITTED, the server's
default), so a check that is not atomic with the insert lets two through.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from checkpointkit.checkpointers.postgres._schema import writer_lock
from checkpointkit.errors import WriteConflictError
from tests.contract.helpers import checkpoint, config, new_thread

RACERS = 8


def _put_args(thread_id: str, parent: str | None, n: int, ns: str = "") -> tuple[Any, ...]:
    cp = checkpoint({"n": n}, {"n": str(n)})
    return config(thread_id, ns, parent), cp, {"source": "loop", "step": n}, {"n": str(n)}


def test_racing_puts_on_one_parent_let_exactly_one_through(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, single_writer=True, min_size=RACERS, max_size=RACERS
    ) as saver:
        thread_id = new_thread()
        head = saver.put(*_put_args(thread_id, None, 0))["configurable"]["checkpoint_id"]
        for round_ in range(1, 6):
            barrier = threading.Barrier(RACERS)
            args = [_put_args(thread_id, head, round_ * 100 + k) for k in range(RACERS)]

            def race(
                a: tuple[Any, ...], barrier: threading.Barrier = barrier
            ) -> str | WriteConflictError:
                barrier.wait()
                try:
                    return str(saver.put(*a)["configurable"]["checkpoint_id"])
                except WriteConflictError as exc:
                    return exc

            with ThreadPoolExecutor(RACERS) as pool:
                outcomes = list(pool.map(race, args))
            won = [o for o in outcomes if isinstance(o, str)]
            lost = [o for o in outcomes if isinstance(o, WriteConflictError)]
            assert len(won) == 1, outcomes
            assert len(lost) == RACERS - 1
            head = won[0]
            # a loser may have come before the winner's put (ids are time-ordered,
            # and the lock decides), but every loss names a checkpoint it did not build on
            assert all(e.parent_id != e.newest_id for e in lost)
        stored = list(saver.list(config(thread_id)))
        parents = [t.parent_config["configurable"]["checkpoint_id"] for t in stored[:-1]]
        assert len(stored) == 6
        assert len(set(parents)) == len(parents)  # one chain: nothing forked


async def test_racing_async_puts_on_one_parent_let_exactly_one_through(
    asaver: AsyncPostgresCheckpointer,
) -> None:
    asaver.single_writer = True
    thread_id = new_thread()
    head = (await asaver.aput(*_put_args(thread_id, None, 0)))["configurable"]["checkpoint_id"]
    results = await asyncio.gather(
        *(asaver.aput(*_put_args(thread_id, head, k)) for k in range(1, 21)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1, results
    assert all(isinstance(r, (dict, WriteConflictError)) for r in results)
    assert len([t async for t in asaver.alist(config(thread_id))]) == 2


def test_a_refused_put_leaves_no_value_behind(saver: PostgresCheckpointer, schema: str) -> None:
    saver.single_writer = True
    thread_id = new_thread()
    first = saver.put(*_put_args(thread_id, None, 1))["configurable"]["checkpoint_id"]
    saver.put(*_put_args(thread_id, first, 2))
    before = saver.storage_bytes(thread_id)
    big = checkpoint({"n": 3, "blob": b"x" * 10_000}, {"n": "3", "blob": "1"})
    with pytest.raises(WriteConflictError):
        saver.put(config(thread_id, "", first), big, {"source": "loop"}, {"n": "3", "blob": "1"})
    assert saver.storage_bytes(thread_id) == before
    pool = saver._pool
    assert pool is not None
    with pool.connection() as conn:
        row = conn.execute(
            psycopg.sql.SQL("SELECT count(*) FROM {} WHERE channel = 'blob'").format(
                psycopg.sql.Identifier(schema, "ck_blobs")
            )
        ).fetchone()
    assert row == (0,)


def test_the_guard_keeps_namespaces_apart_under_concurrency(postgres_uri: str, schema: str) -> None:
    """Guarded puts of different subgraph namespaces of one thread never wait on each other."""
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, single_writer=True, max_size=4
    ) as saver:
        thread_id = new_thread()
        pool = saver._pool
        assert pool is not None
        with pool.connection() as holder, holder.transaction():
            # hold namespace "a"'s guard lock, as a put in flight would
            key = writer_lock(saver._names, thread_id, "a")
            holder.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            done = threading.Event()

            def other_namespace() -> None:
                saver.put(*_put_args(thread_id, None, 1, ns="b"))
                done.set()

            runner = threading.Thread(target=other_namespace)
            runner.start()
            assert done.wait(10)  # namespace "b" is not blocked by "a"'s lock
            runner.join()
