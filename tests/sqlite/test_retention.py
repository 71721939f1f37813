"""Retention: ttl for idle threads, keep_last per namespace, space given back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer, SweepResult
from tests.contract.helpers import checkpoint, config
from tests.sqlite.test_data import Writer


def ids(saver: SQLiteCheckpointer, thread_id: str, ns: str | None = None) -> list[str]:
    return [
        t.config["configurable"]["checkpoint_id"]
        for t in saver.list(config(thread_id, ns) if ns is not None else config(thread_id))
    ]


def pages(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    count = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    conn.close()
    return count, free


def backdate(path: Path, thread_id: str, seconds: float) -> None:
    """Pretend the last checkpoint of a thread was stored `seconds` earlier."""
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE ck_threads SET touched_at = touched_at - ? WHERE thread_id = ?",
        (seconds, thread_id),
    )
    conn.commit()
    conn.close()


def test_ttl_deletes_idle_threads_only(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path, ttl=timedelta(hours=1))
    Writer(saver, "old").step(a=1)
    Writer(saver, "old-sub", "child:1").step(a=1)  # a thread with only a subgraph
    fresh = Writer(saver, "fresh")
    fresh.step(a=1)
    backdate(path, "old", 7200)
    backdate(path, "old-sub", 7200)
    backdate(path, "fresh", 1800)
    assert saver.sweep() == SweepResult(2, 0)
    assert saver.get_tuple(config("old")) is None
    assert saver.get_tuple(config("old-sub", "child:1")) is None
    assert [t.thread_id for t in saver.list_threads()] == ["fresh"]
    assert saver.storage_bytes("old") == 0
    backdate(path, "fresh", 7200)
    fresh.step(a=2)  # writing again keeps a thread alive
    assert saver.sweep() == SweepResult(0, 0)
    assert saver.sweep(ttl=60) == SweepResult(0, 0)
    assert saver.get_tuple(config("fresh")) is not None
    saver.close()


def test_keep_last_per_thread_and_namespace(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path, keep_last=3)
    root, sub = Writer(saver, "t"), Writer(saver, "t", "child:1")
    messages: list[str] = []
    for i in range(10):
        messages = [*messages, f"m{i} " + "x" * 2000]
        root.step({"step": i}, messages=messages, n=i)
        sub.step(n=i)
    saver.put_writes(config("t", checkpoint_id=root.head), [("n", "pending")], "task")
    other = Writer(saver, "small")
    other.step(a=1)
    before = saver.storage_bytes()
    kept_root, kept_sub = ids(saver, "t", "")[:3], ids(saver, "t", "child:1")[:3]
    result = saver.sweep()
    assert result == SweepResult(0, 14)
    assert ids(saver, "t", "") == kept_root
    assert ids(saver, "t", "child:1") == kept_sub
    assert ids(saver, "small") == [other.head]
    latest = saver.get_tuple(config("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"]["messages"] == messages
    assert [w[2] for w in latest.pending_writes] == ["pending"]
    for checkpoint_id in kept_root:  # older kept ones still rebuild their lists
        tup = saver.get_tuple(config("t", checkpoint_id=checkpoint_id))
        assert tup is not None
        assert len(tup.checkpoint["channel_values"]["messages"]) >= 8
    assert saver.storage_bytes() < before
    info = {t.thread_id: t for t in saver.list_threads()}
    assert info["t"].checkpoint_count == 3
    # the file gave its free pages back
    assert pages(path)[1] == 0
    assert saver.sweep() == SweepResult(0, 0)
    saver.close()


def test_sweep_gives_space_back_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    for n in range(20):
        Writer(saver, f"t{n}").step(a="x" * 50_000)
        backdate(path, f"t{n}", 3600)
    Writer(saver, "keep").step(a=1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    full, _ = pages(path)
    assert saver.sweep(ttl=60).deleted_threads == 20
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    after, free = pages(path)
    assert free == 0
    assert after < full / 4
    saver.close()


def test_retention_on_put(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path, keep_last=2, ttl=0.4, retain_on_put=True)
    Writer(saver, "idle").step(a=1)
    backdate(path, "idle", 3600)
    writer = Writer(saver, "t")
    messages: list[str] = []
    for i in range(8):
        messages = [*messages, f"m{i}"]
        writer.step(messages=messages)
        assert len(ids(saver, "t")) == min(i + 1, 2)
    time.sleep(0.25)  # idle threads are looked for at most every ttl / 2
    writer.step(messages=[*messages, "last"])  # the idle thread goes on this put
    assert [t.thread_id for t in saver.list_threads()] == ["t"]
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["messages"][-2:] == ["m7", "last"]
    saver.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("retain_on_put", [True, False])
async def test_put_and_aput_look_for_idle_threads_alike(
    tmp_path: Path, mode: str, retain_on_put: bool
) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path, ttl=0.4, retain_on_put=retain_on_put)

    async def put(thread_id: str) -> None:
        args = (config(thread_id), checkpoint({"n": 1}, {"n": 1}), {}, {"n": 1})
        if mode == "async":
            await saver.aput(*args)
        else:
            saver.put(*args)

    await put("idle")  # the first put looks (nothing is idle yet)
    backdate(path, "idle", 3600)
    await put("t")  # too soon after the last look: the idle thread stays
    assert sorted(t.thread_id for t in saver.list_threads()) == ["idle", "t"]
    await asyncio.sleep(0.25)  # idle threads are looked for at most every ttl / 2
    await put("t")
    left = sorted(t.thread_id for t in saver.list_threads())
    assert left == (["t"] if retain_on_put else ["idle", "t"])
    saver.close()


def extend(state: list[str] | None, writes: Any) -> list[str]:
    out = list(state or [])
    for w in writes:
        out.extend(w)
    return out


class Notes(TypedDict):
    notes: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=4)]


def test_keep_last_keeps_what_delta_channels_need(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    builder = StateGraph(Notes)
    builder.add_node("note", lambda s: {"notes": [f"note {len(s['notes'])}"]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    graph = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "d"}}
    for i in range(9):
        graph.invoke({"notes": [f"user {i}"]}, cfg)
    before = graph.get_state(cfg).values["notes"]
    assert len(before) == 18
    result = saver.sweep(keep_last=2)
    assert result.pruned_checkpoints > 0
    assert len(ids(saver, "d")) > 2  # ancestors back to a snapshot stay
    assert graph.get_state(cfg).values["notes"] == before
    graph.invoke({"notes": ["after"]}, cfg)
    assert graph.get_state(cfg).values["notes"][-2:] == ["after", "note 19"]
    saver.close()
