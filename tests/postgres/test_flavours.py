"""Both classes offer both flavours of every method; filters are served by indexes."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from checkpointkit.checkpointers.postgres import (
    AsyncPostgresCheckpointer,
    PostgresCheckpointer,
    SweepResult,
)
from checkpointkit.checkpointers.postgres._queries import ListShape
from checkpointkit.errors import ConfigurationError
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run


async def test_sync_saver_async_extras(saver: PostgresCheckpointer) -> None:
    run = Run(saver, new_thread())
    await run.astep({"kind": "x"}, a=1)
    await saver.asetup()
    summaries = [s async for s in saver.alist_metadata(config(run.thread_id))]
    assert [s.metadata["kind"] for s in summaries] == ["x"]  # type: ignore[typeddict-item]
    assert await saver.astorage_bytes(run.thread_id) == saver.storage_bytes(run.thread_id) > 0
    assert await saver.adisk_bytes() > 0
    assert await saver.asweep(keep_last=1) == SweepResult()


async def test_async_saver_sync_extras_from_a_worker_thread(
    asaver: AsyncPostgresCheckpointer,
) -> None:
    run = Run(asaver, new_thread())
    await run.astep({"kind": "x"}, a=1)

    def sync_side() -> tuple[Any, ...]:
        asaver.setup()
        summaries = list(asaver.list_metadata(config(run.thread_id)))
        return summaries, asaver.storage_bytes(), asaver.disk_bytes(), asaver.sweep(keep_last=1)

    summaries, stored, disk, swept = await asyncio.to_thread(sync_side)
    assert [s.config for s in summaries] == [t.config async for t in asaver.alist(None)]
    assert stored == await asaver.astorage_bytes() > 0
    assert disk > 0
    assert swept == SweepResult()
    with pytest.raises(ConfigurationError, match="deadlock"):
        asaver.storage_bytes()  # a sync call on the saver's own loop


async def test_one_async_connection_serves_many_tasks(postgres_uri: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_uri, autocommit=True) as conn:
        saver = AsyncPostgresCheckpointer(conn, schema=schema)
        runs = [Run(saver, new_thread()) for _ in range(10)]

        async def work(run: Run) -> None:
            for i in range(3):
                await run.astep(count=i)
            await run.acheck()

        await asyncio.gather(*(work(run) for run in runs))
        assert len(await saver.alist_threads()) == 10


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactions"])
def test_a_given_pool_of_either_kind_commits_every_operation(
    postgres_uri: str, schema: str, autocommit: bool, caplog: pytest.LogCaptureFixture
) -> None:
    kwargs = {"autocommit": autocommit}
    with ConnectionPool(postgres_uri, kwargs=kwargs, min_size=1, max_size=2) as pool:
        saver = PostgresCheckpointer(pool, schema=schema)
        run = Run(saver, new_thread())
        head = run.step(count=1)
        saver.put_writes(config(run.thread_id, checkpoint_id=head), [("count", 5)], "task")
        run.step(count=2)
        run.check()
        with pool.connection() as conn:  # each operation left its connection idle
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # nothing was left to a rollback: another session sees every operation
    assert "rolling back" not in caplog.text
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as other:
        tup = other.get_tuple(config(run.thread_id, checkpoint_id=head))
        assert tup is not None
        assert tup.checkpoint["channel_values"]["count"] == 1
        assert [w[1:] for w in tup.pending_writes or []] == [("count", 5)]
        latest = other.get_tuple(config(run.thread_id))
        assert latest is not None
        assert latest.checkpoint["channel_values"]["count"] == 2


def test_metadata_filters_use_the_gin_indexes(saver: PostgresCheckpointer, schema: str) -> None:
    run = Run(saver, new_thread())
    run.step({"user": "u1"}, a=1)
    # list(None, filter=...): across threads, only the metadata index can help
    shape = ListShape(False, False, False, False, True, False, True)
    params = {"filter": '{"user": "u1"}', "page_size": 10}
    pool = saver._pool
    assert pool is not None
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")  # a tiny table is scanned otherwise
        plan = conn.execute(b"EXPLAIN " + saver._q.list_page(shape), params).fetchall()
        assert "ck_checkpoints_metadata_gin" in "\n".join(r[0] for r in plan)
        threads = {"filter": '{"user": "u1"}', "after_updated": None, "after_thread": None}
        plan = conn.execute(
            b"EXPLAIN " + saver._q.list_threads, {**threads, "page_size": 10}
        ).fetchall()
        assert "ck_threads_metadata_gin" in "\n".join(r[0] for r in plan)
