"""Threads, processes, event loops and crashes against one SQLite file.

Each test uses real files and real processes: several writers at once, a
child killed with SIGKILL in the middle of a put, a lock held by another
connection, graphs run under ``invoke`` and ``ainvoke`` with either class.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import random
import signal
import sqlite3
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer, SQLiteCheckpointer
from checkpointkit.errors import LockTimeoutError
from tests.contract.helpers import checkpoint, config
from tests.sqlite import _workers


def chat(saver: Any) -> Any:
    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"echo {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=saver)


def put_chain(saver: SQLiteCheckpointer, thread_id: str, n: int) -> list[str]:
    ids: list[str] = []
    versions: dict[str, Any] = {}
    messages: list[str] = []
    for i in range(n):
        messages = [*messages, f"m{i}"]
        versions["messages"] = saver.get_next_version(versions.get("messages"), None)
        cp = checkpoint({"messages": messages}, versions)
        parent = config(thread_id, checkpoint_id=ids[-1] if ids else None)
        meta: Any = {"source": "loop", "step": i}
        stored = saver.put(parent, cp, meta, {"messages": versions["messages"]})
        ids.append(stored["configurable"]["checkpoint_id"])
    return ids


# --- no lock held while a caller iterates -----------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["file", "given-connection"])
def test_get_tuple_and_put_inside_a_list_loop(tmp_path: Path, shared: bool) -> None:
    path = str(tmp_path / "db.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False) if shared else None
    saver = SQLiteCheckpointer(conn or path, page_size=7)
    ids = put_chain(saver, "t", 30)
    seen = []
    for tup in saver.list(config("t")):
        # a read and a write from inside the loop, on the same thread
        again = saver.get_tuple(tup.config)
        assert again is not None
        assert again.checkpoint == tup.checkpoint
        put_chain(saver, f"other-{len(seen)}", 1)
        if conn is not None:
            assert not conn.in_transaction
        seen.append(tup.config["configurable"]["checkpoint_id"])
    assert seen == ids[::-1]
    saver.close()
    if conn is not None:
        conn.close()


def test_nothing_is_locked_between_pages(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    saver = SQLiteCheckpointer(path, page_size=5)
    put_chain(saver, "t", 20)
    listing = saver.list(config("t"))
    next(listing)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    # A checkpoint of the WAL cannot complete while a reader holds a snapshot.
    busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    other.execute("BEGIN IMMEDIATE")
    other.execute("COMMIT")
    assert len(list(listing)) == 19
    other.close()
    saver.close()


# --- sync and async, each under invoke and ainvoke -----------------------------------


async def test_sync_class_under_ainvoke(tmp_path: Path) -> None:
    with SQLiteCheckpointer.from_conn_string(str(tmp_path / "db.sqlite")) as saver:
        graph = chat(saver)
        cfg = {"configurable": {"thread_id": "1"}}
        for i in range(3):
            await graph.ainvoke({"messages": [HumanMessage(content=f"hi {i}")]}, cfg)
        state = await graph.aget_state(cfg)
        assert [m.content for m in state.values["messages"]][-2:] == ["hi 2", "echo hi 2"]
        history = [s async for s in graph.aget_state_history(cfg)]
        assert len(history) == 9
        # and the sync API of the same saver, called from inside the running loop
        assert len(list(graph.get_state_history(cfg))) == 9


def test_async_class_under_invoke(tmp_path: Path) -> None:
    saver = AsyncSQLiteCheckpointer(tmp_path / "db.sqlite")
    graph = chat(saver)
    cfg = {"configurable": {"thread_id": "1"}}
    for i in range(3):
        graph.invoke({"messages": [HumanMessage(content=f"hi {i}")]}, cfg)
    assert len(graph.get_state(cfg).values["messages"]) == 6
    assert len(list(graph.get_state_history(cfg))) == 9
    saver.close()


@pytest.mark.timeout(60)
async def test_async_class_under_invoke_inside_a_running_loop(tmp_path: Path) -> None:
    async with AsyncSQLiteCheckpointer.from_conn_string(str(tmp_path / "db.sqlite")) as saver:
        graph = chat(saver)
        cfg = {"configurable": {"thread_id": "1"}}
        # A blocking call from the loop's own thread: must not deadlock.
        graph.invoke({"messages": [HumanMessage(content="sync")]}, cfg)
        await graph.ainvoke({"messages": [HumanMessage(content="async")]}, cfg)
        graph.invoke({"messages": [HumanMessage(content="sync again")]}, cfg)
        contents = [m.content for m in (await graph.aget_state(cfg)).values["messages"]]
        assert contents == ["sync", "echo sync", "async", "echo async", "sync again",
                            "echo sync again"]  # fmt: skip
        streamed = [c async for c in graph.astream({"messages": [HumanMessage(content="s")]}, cfg)]
        assert streamed
        assert len(graph.get_state(cfg).values["messages"]) == 8


async def test_concurrent_async_writers_on_one_saver(tmp_path: Path) -> None:
    saver = AsyncSQLiteCheckpointer(tmp_path / "db.sqlite")
    graph = chat(saver)

    async def converse(n: int) -> None:
        cfg = {"configurable": {"thread_id": f"t{n}"}}
        for i in range(4):
            await graph.ainvoke({"messages": [HumanMessage(content=f"{n}-{i}")]}, cfg)

    await asyncio.gather(*(converse(n) for n in range(12)))
    threads = await saver.alist_threads()
    assert len(threads) == 12
    assert all(t.checkpoint_count == 12 for t in threads)
    saver.close()


# --- several processes --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_four_processes_of_fifty_threads_write_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    SQLiteCheckpointer(path).setup()
    n_procs, n_threads, n_puts = 4, 50, 10
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with ProcessPoolExecutor(n_procs, mp_context=context) as pool:
        futures = [
            pool.submit(_workers.write_threads, path, p, n_threads, n_puts) for p in range(n_procs)
        ]
        results = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    committed = {k: v for result in results for k, v in result.items()}
    assert len(committed) == n_procs * n_threads
    saver = SQLiteCheckpointer(path)
    for thread_id, puts in committed.items():
        assert len(puts) == n_puts
        for checkpoint_id, messages, counter in puts:
            tup = saver.get_tuple(config(thread_id, checkpoint_id=checkpoint_id))
            assert tup is not None
            assert tup.checkpoint["channel_values"] == {"messages": messages, "counter": counter}
            assert [w[2] for w in tup.pending_writes] == [counter]
        listed = [t.config["configurable"]["checkpoint_id"] for t in saver.list(config(thread_id))]
        assert listed == [p[0] for p in puts][::-1]
    infos = saver.list_threads()
    assert len(infos) == n_procs * n_threads
    assert {i.checkpoint_count for i in infos} == {n_puts}
    assert len(saver.list_threads(filter={"proc": 2})) == n_threads
    ok = sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0]
    assert ok == "ok"
    saver.close()
    assert elapsed < 60


def _fork_child(saver: SQLiteCheckpointer) -> None:
    put_chain(saver, "child", 3)
    saver.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads (py >= 3.12)
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    put_chain(saver, "parent", 2)  # the parent's connection exists before the fork
    child = multiprocessing.get_context("fork").Process(target=_fork_child, args=(saver,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    put_chain(saver, "parent-again", 2)  # the parent's connection still works
    assert {t.thread_id for t in saver.list_threads()} == {"parent", "child", "parent-again"}
    saver.close()


# --- crashes and locks ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_in_the_middle_of_a_put_keeps_every_committed_checkpoint(tmp_path: Path) -> None:
    path = str(tmp_path / "victim.sqlite")
    context = multiprocessing.get_context("spawn")
    rng = random.Random(os.getpid())
    committed: list[tuple[str, int, str]] = []
    for _ in range(3):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_workers.put_until_killed, args=(path, send, 3_000_000))
        child.start()
        send.close()
        assert receive.poll(30), "the child did not start"
        assert receive.recv()[0] == "ready"
        time.sleep(rng.uniform(0.2, 0.8))
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        while receive.poll(0.2):
            try:
                _, checkpoint_id, step, digest = receive.recv()
            except EOFError:
                break
            committed.append((checkpoint_id, step, digest))
        receive.close()
    assert committed, "the child committed nothing before it was killed"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    saver = SQLiteCheckpointer(path)
    for checkpoint_id, step, digest in committed:
        tup = saver.get_tuple(config("victim", checkpoint_id=checkpoint_id))
        assert tup is not None
        values = tup.checkpoint["channel_values"]
        assert values["step"] == step
        assert hashlib.sha256(values["blob"]).hexdigest() == digest
    # whatever else is stored (a put killed after COMMIT) decodes whole
    for tup in saver.list(config("victim")):
        assert len(tup.checkpoint["channel_values"]["blob"]) == 3_000_000
    saver.close()


def test_a_held_lock_raises_lock_timeout_error(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    saver = SQLiteCheckpointer(path, timeout=0.2)
    put_chain(saver, "t", 2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(LockTimeoutError, match="locked") as caught:
        put_chain(saver, "t2", 1)
    assert time.monotonic() - started >= 0.15
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert isinstance(caught.value, TimeoutError)
    # reads go on under WAL while a writer holds the lock
    assert len(list(saver.list(config("t")))) == 2
    holder.execute("ROLLBACK")
    holder.close()
    put_chain(saver, "t2", 1)
    assert {t.thread_id for t in saver.list_threads()} == {"t", "t2"}
    saver.close()


def test_writers_of_one_process_take_turns_without_timing_out(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite", timeout=10)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            put_chain(saver, f"t{n}", 10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(saver.list_threads()) == 16
    saver.close()
