"""Group commit (`_writes.WriteQueue`): puts that arrive together share a transaction.

Every job must still succeed or fail on its own, be committed when its caller
returns, and no caller may wait forever: a failing job, a lock held by another
connection, an interrupted leader, a cancelled async caller, and sync and
async callers mixed.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer, SQLiteCheckpointer
from checkpointkit.checkpointers.sqlite._connection import Database
from checkpointkit.checkpointers.sqlite._schema import default_pragmas
from checkpointkit.checkpointers.sqlite._writes import WriteQueue
from checkpointkit.errors import BackendUnavailableError, LockTimeoutError, WriteConflictError
from tests.contract.helpers import checkpoint, config
from tests.sqlite import _workers


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "db.sqlite", default_pragmas(synchronous="NORMAL", timeout=5), 5)
    with database.write() as cur:
        cur.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    yield database
    database.close()


def stored(db: Database) -> set[str]:
    with db.read() as cur:
        return {r[0] for r in cur.execute("SELECT k FROM t").fetchall()}


def insert(key: str) -> Callable[[sqlite3.Cursor], str]:
    def job(cur: sqlite3.Cursor) -> str:
        cur.execute("INSERT INTO t VALUES (?)", (key,))
        return key

    return job


def count_transactions(db: Database) -> list[str]:
    """Trace the BEGIN IMMEDIATE statements of every connection `db` opens from now on."""
    begins: list[str] = []
    connect = db._connect

    def traced(location: str) -> sqlite3.Connection:
        conn = connect(location)
        conn.set_trace_callback(
            lambda sql: begins.append(sql) if sql == "BEGIN IMMEDIATE" else None
        )
        return conn

    db._connect = traced  # type: ignore[method-assign]
    db.close()  # drop pooled connections: new ones are traced
    db._closed = False
    return begins


def blocking_first(queue: WriteQueue, started: threading.Event, gate: threading.Event) -> None:
    """Run a job that holds the transaction until `gate` opens (the others queue meanwhile)."""

    def job(cur: sqlite3.Cursor) -> None:
        cur.execute("INSERT INTO t VALUES ('first')")
        started.set()
        assert gate.wait(10)

    queue.run(job)


def run_while_blocked(
    queue: WriteQueue, jobs: list[Callable[[sqlite3.Cursor], Any]]
) -> list[BaseException | Any]:
    """Queue `jobs` from threads while a first job holds the lock; return each outcome."""
    started, gate = threading.Event(), threading.Event()
    first = threading.Thread(target=blocking_first, args=(queue, started, gate))
    first.start()
    assert started.wait(10)
    outcomes: list[Any] = [None] * len(jobs)

    def call(i: int) -> None:
        try:
            outcomes[i] = queue.run(jobs[i])
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(queue._pending) < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.005)
    gate.set()
    first.join(10)
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    return outcomes


# --- sync callers ----------------------------------------------------------------------


def test_jobs_waiting_together_are_committed_in_one_transaction(db: Database) -> None:
    begins = count_transactions(db)
    queue = WriteQueue(db)
    outcomes = run_while_blocked(queue, [insert(f"k{i}") for i in range(20)])
    assert outcomes == [f"k{i}" for i in range(20)]
    assert stored(db) == {"first", *outcomes}
    assert len(begins) == 2  # the first job's, then all twenty at once


def test_a_failing_job_of_a_batch_fails_alone(db: Database) -> None:
    queue = WriteQueue(db)

    def fails(cur: sqlite3.Cursor) -> None:
        cur.execute("INSERT INTO t VALUES ('half-done')")
        raise ValueError("no")

    jobs = [insert("a"), fails, insert("b"), insert("a")]  # and a duplicate key
    outcomes = run_while_blocked(queue, jobs)
    assert outcomes[0] == "a"
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == "b"
    assert isinstance(outcomes[3], sqlite3.IntegrityError)  # a plain SQL error, as it was
    assert stored(db) == {"first", "a", "b"}


def test_a_lock_held_by_another_connection_fails_every_waiting_job(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = Database(path, default_pragmas(synchronous="NORMAL", timeout=0.2), 0.2)
    with db.write() as cur:
        cur.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    queue = WriteQueue(db)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            queue.run(insert(f"k{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(errors) == 8
    assert all(isinstance(e, LockTimeoutError) for e in errors)
    holder.execute("ROLLBACK")
    holder.close()
    assert stored(db) == set()
    assert queue.run(insert("after")) == "after"  # and the queue goes on
    db.close()


def test_an_interrupted_leader_raises_and_its_batch_is_rolled_back(db: Database) -> None:
    queue = WriteQueue(db)

    def interrupted(cur: sqlite3.Cursor) -> None:
        raise KeyboardInterrupt

    outcomes = run_while_blocked(queue, [insert("a"), interrupted, insert("b")])
    # whoever led that batch was interrupted; the others were told to retry
    assert sum(isinstance(o, KeyboardInterrupt) for o in outcomes) == 1
    others = [o for o in outcomes if not isinstance(o, KeyboardInterrupt)]
    assert all(isinstance(o, BackendUnavailableError) for o in others)
    assert stored(db) == {"first"}
    assert queue.run(insert("after")) == "after"


def test_many_threads_of_one_saver_put_and_read_their_own_writes(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    reader = SQLiteCheckpointer(tmp_path / "db.sqlite")  # sees only what is committed
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            parent = None
            versions: dict[str, Any] = {}
            for i in range(15):
                versions["n"] = saver.get_next_version(versions.get("n"), None)
                cp = checkpoint({"n": [n, i]}, versions)
                meta: Any = {"step": i}
                put = saver.put(config(f"t{n}", checkpoint_id=parent), cp, meta, dict(versions))
                parent = put["configurable"]["checkpoint_id"]
                saver.put_writes(put, [("n", i)], "task")
                tup = reader.get_tuple(config(f"t{n}"))  # committed when put returned
                assert tup is not None
                assert tup.checkpoint["channel_values"]["n"] == [n, i]
                assert tup.pending_writes == [("task", "n", i)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert len(reader.list_threads()) == 12
    saver.close()
    reader.close()


# --- async callers ---------------------------------------------------------------------


async def test_concurrent_aputs_share_transactions(tmp_path: Path) -> None:
    saver = AsyncSQLiteCheckpointer(tmp_path / "db.sqlite")
    await saver.asetup()
    begins = count_transactions(saver._db)
    n = 200

    async def one(i: int) -> None:
        versions = {"n": saver.get_next_version(None, None)}
        cp = checkpoint({"n": i}, versions)
        meta: Any = {"step": i}
        put = await saver.aput(config(f"t{i % 20}"), cp, meta, dict(versions))
        await saver.aput_writes(put, [("n", i)], "task")

    await asyncio.gather(*(one(i) for i in range(n)))
    listed = 0
    for k in range(20):
        listed += len([c async for c in saver.alist(config(f"t{k}"))])
    assert listed == n
    assert len(begins) < 2 * n  # puts and writes shared transactions
    saver.close()


async def test_a_cancelled_aput_does_not_break_the_others(tmp_path: Path) -> None:
    saver = AsyncSQLiteCheckpointer(tmp_path / "db.sqlite")
    await saver.asetup()
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))

    async def one(i: int) -> str:
        versions = {"n": saver.get_next_version(None, None)}
        put = await saver.aput(config(f"t{i}"), checkpoint({"n": i}, versions), {}, versions)
        return str(put["configurable"]["checkpoint_id"])

    tasks = [asyncio.ensure_future(one(i)) for i in range(30)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    tasks[17].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) <= 2
    for i, result in enumerate(results):
        if isinstance(result, str):
            tup = await saver.aget_tuple(config(f"t{i}"))
            assert tup is not None
            assert tup.checkpoint["id"] == result
    await asyncio.sleep(0.05)  # let late results reach their (cancelled) futures
    assert not loop_errors
    saver.close()


async def test_sync_threads_and_async_tasks_write_at_once(tmp_path: Path) -> None:
    saver = AsyncSQLiteCheckpointer(tmp_path / "db.sqlite")
    await saver.asetup()

    def sync_puts(k: int) -> None:
        for i in range(20):
            versions = {"n": saver.get_next_version(None, None)}
            saver.put(config(f"s{k}-{i}"), checkpoint({"n": i}, versions), {}, versions)

    async def async_puts(k: int) -> None:
        for i in range(20):
            versions = {"n": saver.get_next_version(None, None)}
            await saver.aput(config(f"a{k}-{i}"), checkpoint({"n": i}, versions), {}, versions)

    await asyncio.wait_for(
        asyncio.gather(
            *(asyncio.to_thread(sync_puts, k) for k in range(4)),
            *(async_puts(k) for k in range(8)),
        ),
        60,
    )
    assert len(await saver.alist_threads()) == 4 * 20 + 8 * 20
    saver.close()


# --- the single-writer guard -----------------------------------------------------------


def test_two_puts_on_one_parent_in_one_batch_store_one(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite", single_writer=True)
    versions = {"n": saver.get_next_version(None, None)}
    root = saver.put(config("t"), checkpoint({"n": 0}, versions), {}, versions)
    parent = root["configurable"]["checkpoint_id"]

    def rival(n: int) -> Callable[[sqlite3.Cursor], None]:
        cp = checkpoint({"n": n}, versions)
        _, job = saver._put_job(config("t", checkpoint_id=parent), cp, {}, {})  # type: ignore[typeddict-item]
        return job

    outcomes = run_while_blocked_saver(saver, [rival(1), rival(2), rival(3)])
    assert sum(o is None for o in outcomes) == 1
    assert sum(isinstance(o, WriteConflictError) for o in outcomes) == 2
    assert len(list(saver.list(config("t")))) == 2
    saver.close()


def run_while_blocked_saver(
    saver: SQLiteCheckpointer, jobs: list[Callable[[sqlite3.Cursor], Any]]
) -> list[Any]:
    with saver._db.write() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
    return run_while_blocked(saver._writes, jobs)


def test_processes_racing_on_one_parent_store_exactly_one(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    saver = SQLiteCheckpointer(path, single_writer=True)
    versions = {"n": saver.get_next_version(None, None)}
    root = saver.put(config("t"), checkpoint({"n": 0}, versions), {}, versions)
    parent = root["configurable"]["checkpoint_id"]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        first = list(
            pool.map(_workers.put_on_parent, [path] * 4, ["t"] * 4, [parent] * 4, range(4))
        )
        again = list(
            pool.map(_workers.put_on_parent, [path] * 4, ["t"] * 4, [parent] * 4, range(4))
        )
    winners = [o for o in first if o != "WriteConflictError"]
    assert len(winners) == 1, first
    assert again == ["WriteConflictError"] * 4
    assert [t.checkpoint["id"] for t in saver.list(config("t"))] == [winners[0], parent]
    saver.close()
