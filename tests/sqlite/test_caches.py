"""The per-process caches of SQLite's read path: never stale values.

A process keeps stored value rows (`_rowcache`) and, like every backend,
decoded plain values, skeletons and metadata (the core's `_decoded`, tested
on every backend in ``tests/core/test_decoded.py``). These tests change the
file from another process (deleting and re-creating a thread) between reads.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from tests.contract.helpers import config
from tests.sqlite import _workers
from tests.sqlite.test_data import Writer
from tests.sqlite.test_rowcache import traced

# --- another process changes the file between reads ---------------------------------


def test_a_thread_deleted_and_recreated_by_another_process_is_never_stale(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "db.sqlite")
    saver = SQLiteCheckpointer(path)
    writer = Writer(saver, "t")
    first = writer.step(a={"v": 1}, gone="was here", messages=["m0"])
    writer.step(a={"v": 2}, messages=["m0", "m1"])
    for _ in range(2):  # the process now holds every row and template of the thread
        tup = saver.get_tuple(config("t"))
        assert tup is not None
        assert tup.checkpoint["channel_values"]["a"] == {"v": 2}
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        head = pool.apply(
            _workers.recreate_thread, (path, "t", {"a": {"v": 3}, "messages": ["other"]})
        )
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["id"] == head
    assert tup.checkpoint["channel_values"] == {"a": {"v": 3}, "messages": ["other"]}
    assert saver.get_tuple(config("t", checkpoint_id=first)) is None
    assert [t.checkpoint["id"] for t in saver.list(config("t"))] == [head]
    # and writing on after the other process's checkpoint works from what is stored
    writer.head = head
    writer.versions = dict(tup.checkpoint["channel_versions"])
    writer.values = dict(tup.checkpoint["channel_values"])
    writer.step(messages=["other", "more"])
    again = saver.get_tuple(config("t"))
    assert again is not None
    assert again.checkpoint["channel_values"] == {"a": {"v": 3}, "messages": ["other", "more"]}
    saver.close()


class _State(TypedDict, total=False):
    n: int


def test_channels_stored_without_a_value_are_not_asked_for_again(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    saver = SQLiteCheckpointer(conn)
    builder = StateGraph(_State)
    builder.add_node("inc", lambda s: {"n": s.get("n", 0) + 1})
    builder.add_edge(START, "inc")
    builder.add_edge("inc", END)
    graph = builder.compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "g"}}
    graph.invoke({"n": 1}, cfg)
    # the last checkpoint names versions of consumed channels that have no row
    reader = SQLiteCheckpointer(conn)
    for saver_ in (saver, reader):
        statements: list[str] = []
        saver_.get_tuple(cfg)  # the reader learns which rows exist and which do not
        traced(conn, statements)
        tup = saver_.get_tuple(cfg)
        conn.set_trace_callback(None)
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"n": 2}
        assert len(statements) == 1, statements
    saver.close()
    reader.close()
    conn.close()
