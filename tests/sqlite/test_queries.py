"""Queries that page or walk: keyset pages over equal ids, the DeltaChannel ancestor walk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from tests.contract.helpers import config
from tests.sqlite.test_data import Writer


def keys(tuples: Any) -> list[tuple[str, str, str]]:
    return [
        (
            t.config["configurable"]["thread_id"],
            t.config["configurable"]["checkpoint_ns"],
            t.config["configurable"]["checkpoint_id"],
        )
        for t in tuples
    ]


def contents(tuples: Any) -> list[tuple[str, str, int]]:
    return [
        (t.config["configurable"]["thread_id"], t.config["configurable"]["checkpoint_ns"],
         t.checkpoint["channel_values"]["n"])
        for t in tuples
    ]  # fmt: skip


@pytest.mark.parametrize("page_size", [1, 2, 3, 100])
def test_pages_across_threads_with_equal_checkpoint_ids(tmp_path: Path, page_size: int) -> None:
    # Copies share checkpoint ids, so a page can end in the middle of a tie.
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite", page_size=page_size)
    memory = MemoryCheckpointer()
    for target in (saver, memory):
        writer = Writer(target, "a")
        for i in range(4):
            writer.step({"kind": i % 2}, n=i)
        Writer(target, "a", "child:1").step({"kind": 1}, n=99)
        target.copy_thread("a", "b")
        target.copy_thread("a", "c")
    for filter in (None, {"kind": 1}):
        ours = keys(saver.list(None, filter=filter))
        assert len(ours) == len(set(ours))
        # the same checkpoints (equal ids may come in another order)
        assert sorted(contents(saver.list(None, filter=filter))) == sorted(
            contents(memory.list(None, filter=filter))
        )
        ids = [k[2] for k in ours]
        assert ids == sorted(ids, reverse=True)
    assert len(keys(saver.list(None))) == 15
    assert len(keys(saver.list({"configurable": {"thread_id": "b"}}))) == 5  # all namespaces
    limited = keys(saver.list(None, limit=7))
    assert limited == keys(saver.list(None))[:7]
    saver.close()


def extend(state: list[str] | None, writes: Any) -> list[str]:
    out = list(state or [])
    for w in writes:
        out.extend(w)
    return out


class Notes(TypedDict):
    notes: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=1000)]


def run_notes(saver: Any, turns: int) -> Any:
    builder = StateGraph(Notes)
    builder.add_node("note", lambda s: {"notes": [f"note {len(s['notes'])}"]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    graph = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "d"}}
    for i in range(turns):
        graph.invoke({"notes": [f"user {i}"]}, cfg)
    return graph, cfg


def test_delta_channel_history_walks_far_back_like_memory(tmp_path: Path) -> None:
    # No snapshot after the first step: the walk spans several batches of ancestors.
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    memory = MemoryCheckpointer()
    graph, cfg = run_notes(saver, 60)
    _, memory_cfg = run_notes(memory, 60)
    state = graph.get_state(cfg)
    assert len(state.values["notes"]) == 120
    for checkpoint_config in (cfg, state.config):
        ours = saver.get_delta_channel_history(config=checkpoint_config, channels=["notes", "x"])
        theirs = memory.get_delta_channel_history(
            config=memory_cfg if checkpoint_config is cfg else _same_position(memory, state),
            channels=["notes", "x"],
        )
        assert _plain(ours) == _plain(theirs)
    assert saver.get_delta_channel_history(config=config("nobody"), channels=["notes"]) == {
        "notes": {"writes": []}
    }
    saver.close()


def _same_position(memory: MemoryCheckpointer, state: Any) -> Any:
    tup = memory.get_tuple({"configurable": {"thread_id": "d"}})
    assert tup is not None
    return tup.config


def _plain(history: Any) -> Any:
    return {
        channel: (entry.get("seed"), [w[1:] for w in entry["writes"]])
        for channel, entry in history.items()
    }


def test_with_allowlist_clones_share_the_database(tmp_path: Path) -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    saver = SQLiteCheckpointer(tmp_path / "db.sqlite", serde=JsonPlusSerializer())
    clone = saver.with_allowlist({("tests", "sqlite", "Thing")})
    Writer(clone, "t").step(a=1)
    assert saver.get_tuple(config("t")) is not None
    assert clone._core.serde is clone.serde
    saver.close()


def index_and_summaries_are_exact(path: Path) -> None:
    """The metadata index and thread summaries hold exactly what the rows imply."""
    import json
    import sqlite3

    from checkpointkit.checkpointers.base import thread_info
    from checkpointkit.checkpointers.sqlite._filters import index_rows
    from checkpointkit.checkpointers.sqlite._sql import CHECKPOINT_COLS, to_checkpoint

    conn = sqlite3.connect(path)
    rows = [
        to_checkpoint(r)
        for r in conn.execute(f"SELECT {', '.join(CHECKPOINT_COLS)} FROM ck_checkpoints")
    ]
    expected = {
        (key, value, r.checkpoint_id, r.thread_id, r.checkpoint_ns)
        for r in rows
        for key, value in index_rows(json.loads(r.metadata))
    }
    stored = set(conn.execute("SELECT * FROM ck_metadata"))
    assert stored == expected
    by_thread: dict[str, list[Any]] = {}
    for r in rows:
        by_thread.setdefault(r.thread_id, []).append(r)
    summaries = {
        t: (count, created, updated)
        for t, count, created, updated in conn.execute(
            "SELECT thread_id, root_count, created_at, updated_at FROM ck_threads "
            "WHERE root_count > 0"
        )
    }
    infos = {t: thread_info(rs) for t, rs in by_thread.items()}
    assert summaries == {
        t: (i.checkpoint_count, i.created_at, i.updated_at) for t, i in infos.items() if i
    }
    assert {t for (t,) in conn.execute("SELECT thread_id FROM ck_threads")} == set(by_thread)
    conn.close()


def test_the_index_and_summaries_follow_every_operation(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    memory = MemoryCheckpointer()
    for target in (saver, memory):
        a, sub = Writer(target, "a"), Writer(target, "a", "child:1")
        for i in range(6):
            a.step({"run_id": f"r{i % 3}", "user": "ann", "n": i, "tags": ["x", i]}, v=i)
            sub.step({"run_id": f"r{i % 3}", "deep": {"k": i}}, v=i)
        # the same checkpoint id put again with other metadata
        head = a.head
        target.put(
            config("a", checkpoint_id=head),
            {**target.get_tuple(config("a"))[1], "id": head},  # type: ignore[index]
            {"user": "bob", "extra": None},
            {},
        )
        target.copy_thread("a", "b")
        target.fork_thread(config("a"), "c")
        target.delete_for_runs(["r1"])
        target.prune(["b"])
        target.delete_thread("c")
        Writer(target, "d").step({"user": "dan"}, v=1)
    index_and_summaries_are_exact(path)
    ours = {(t.thread_id, t.checkpoint_count, json_key(t.metadata)) for t in saver.list_threads()}
    theirs = {
        (t.thread_id, t.checkpoint_count, json_key(t.metadata)) for t in memory.list_threads()
    }
    assert ours == theirs
    assert len(list(saver.list(None, filter={"user": "bob"}))) == len(
        list(memory.list(None, filter={"user": "bob"}))
    )
    saver.sweep(keep_last=1)
    index_and_summaries_are_exact(path)
    saver.close()


def json_key(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def test_delta_history_stops_at_a_loop_in_the_parent_chain(tmp_path: Path) -> None:
    # Putting an existing id again under a descendant's config makes a loop.
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    memory = MemoryCheckpointer()
    results = []
    for target in (saver, memory):
        writer = Writer(target, "t")
        first = writer.step(items=["seed"])
        target.put_writes(config("t", checkpoint_id=first), [("items", "w1")], "t1")
        writer.step(n=1)
        tup = target.get_tuple(config("t", checkpoint_id=first))
        assert tup is not None
        target.put(config("t", checkpoint_id=writer.head), tup.checkpoint, {}, {})
        history = target.get_delta_channel_history(config=config("t"), channels=["items"])
        results.append(_plain(history))
    assert results[0] == results[1]
    saver.close()
