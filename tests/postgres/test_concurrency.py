"""One saver and one pool shared by many threads and tasks, with no saver-wide lock."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run, msg


def test_eight_threads_share_one_saver(saver: PostgresCheckpointer) -> None:
    def work(worker: int) -> Run:
        run = Run(saver, new_thread())
        messages: list[Any] = []
        for i in range(12):
            messages = [*messages, msg(i)]
            run.step({"worker": worker}, messages=messages, count=i)
            head = config(run.thread_id, checkpoint_id=run.head)
            saver.put_writes(head, [("count", -i)], f"task-{i}", "~t")
        run.check()
        return run

    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(work, range(8)))
    for worker, run in enumerate(runs):
        listed = list(saver.list(config(run.thread_id)))
        assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
            checkpoint_id for checkpoint_id, _ in reversed(run.history)
        ]
        assert all(t.metadata["worker"] == worker for t in listed)  # type: ignore[typeddict-item]
    assert len(saver.list_threads()) == 8


async def test_hundred_tasks_share_one_async_saver(asaver: AsyncPostgresCheckpointer) -> None:
    async def work(task: int) -> Run:
        run = Run(asaver, new_thread())
        messages: list[Any] = []
        for i in range(4):
            messages = [*messages, msg(i)]
            await run.astep({"task": task}, messages=messages, count=i)
        await run.acheck()
        return run

    runs = await asyncio.gather(*(work(task) for task in range(100)))
    threads = await asaver.alist_threads()
    assert {t.thread_id for t in threads} == {run.thread_id for run in runs}
    assert all(t.checkpoint_count == 4 for t in threads)


def test_a_blocked_operation_does_not_hold_up_the_others(
    saver: PostgresCheckpointer, postgres_uri: str, schema: str
) -> None:
    blocked, free = Run(saver, new_thread()), Run(saver, new_thread())
    blocked.step(a=1)
    free.step(a=1)
    with psycopg.connect(postgres_uri) as other:  # holds its row lock until rollback
        other.execute(
            sql.SQL("SELECT 1 FROM {} WHERE thread_id = %s FOR UPDATE").format(
                sql.Identifier(schema, "ck_threads")
            ),
            [blocked.thread_id],
        )
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(blocked.step, a=2)
            time.sleep(0.3)
            assert not waiting.done()
            for i in range(3):  # the same saver goes on serving other threads
                free.step(a=i + 2)
            free.check()
            assert not waiting.done()
            other.rollback()
            waiting.result(timeout=10)
    blocked.check()


def _hold_thread_lock(conn: psycopg.Connection[Any], saver: Any, thread_id: str) -> None:
    """Take a thread's advisory lock exclusively, as maintenance does: its puts wait."""
    from checkpointkit.checkpointers.postgres._schema import thread_lock

    conn.execute(
        "SELECT pg_advisory_xact_lock(%s::int4, %s::int4)",
        [saver._names.lock_class, thread_lock(thread_id)],
    )


def test_a_read_waits_for_the_writes_of_its_thread_in_flight(
    saver: PostgresCheckpointer, postgres_uri: str
) -> None:
    """A read started after a put of the same thread was issued sees that put."""
    run = Run(saver, new_thread())
    run.step(count=1)
    # the holder goes first on the way out: a failing test never leaves the put blocked
    with ThreadPoolExecutor(3) as pool, psycopg.connect(postgres_uri) as holder:
        _hold_thread_lock(holder, saver, run.thread_id)  # the next put blocks in the server
        put = pool.submit(run.step, count=2)
        deadline = time.monotonic() + 10
        while not saver._writes._now(run.thread_id):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        other = Run(saver, new_thread())
        other.step(count=7)  # another thread is not held up
        read = pool.submit(saver.get_tuple, config(run.thread_id))
        listed = pool.submit(lambda: list(saver.list(config(run.thread_id), limit=1)))
        time.sleep(0.3)
        assert not read.done()
        assert not listed.done()
        holder.rollback()  # release: the put commits, then the reads run
        head = put.result(10)
        tup = read.result(10)
        assert tup is not None
        assert tup.checkpoint["id"] == head
        assert listed.result(10)[0].checkpoint["id"] == head
