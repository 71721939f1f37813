"""The read path: one statement for a checkpoint and its writes, value rows reused per process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from tests.contract.helpers import checkpoint, config
from tests.sqlite.test_data import Writer


def traced(conn: sqlite3.Connection, statements: list[str]) -> None:
    statements.clear()
    conn.set_trace_callback(statements.append)


def test_get_tuple_of_a_checkpoint_this_process_wrote_is_one_query(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    saver = SQLiteCheckpointer(conn)
    writer = Writer(saver, "t")
    messages: list[str] = []
    for i in range(5):
        writer.step(a={"i": i}, b="unchanged" if i else "first", messages=messages)
        messages = [*messages, f"m{i}"]  # appended: stored as a delta chain
    saver.put_writes(config("t", checkpoint_id=writer.head), [("a", 1), ("b", 2)], "task")
    statements: list[str] = []
    traced(conn, statements)
    tup = saver.get_tuple(config("t"))
    conn.set_trace_callback(None)
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {
        "a": {"i": 4},
        "b": "unchanged",
        "messages": ["m0", "m1", "m2", "m3"],
    }
    assert [(task, ch, v) for task, ch, v in tup.pending_writes or []] == [
        ("task", "a", 1),
        ("task", "b", 2),
    ]
    # The checkpoint with its writes, outside a transaction: every value row
    # is one this process stored, so none is fetched again.
    assert len(statements) == 1, statements
    # another process's view (no cache) reads the same checkpoint
    reader = SQLiteCheckpointer(conn)
    reader.setup()
    traced(conn, statements)
    again = reader.get_tuple(config("t"))
    conn.set_trace_callback(None)
    assert again is not None
    assert again.checkpoint == tup.checkpoint
    assert again.pending_writes == tup.pending_writes
    # The one statement, then in one read transaction: BEGIN, the checkpoint
    # again, the value rows, the list's delta chain, COMMIT.
    assert len(statements) == 6, statements
    traced(conn, statements)
    assert reader.get_tuple(config("t")) == again  # now it holds them too
    conn.set_trace_callback(None)
    assert len(statements) == 1, statements
    saver.close()
    conn.close()


def test_values_read_back_are_fresh_objects(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    Writer(saver, "t").step(a={"x": [1]})
    first = saver.get_tuple(config("t"))
    assert first is not None
    first.checkpoint["channel_values"]["a"]["x"].append(2)  # a caller edits what it got
    second = saver.get_tuple(config("t"))
    assert second is not None
    assert second.checkpoint["channel_values"]["a"] == {"x": [1]}
    saver.close()


def test_rows_deleted_by_another_process_are_not_served(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer_saver = SQLiteCheckpointer(path)
    other = SQLiteCheckpointer(path)
    writer = Writer(writer_saver, "t")
    ids = [writer.step(a=i, keep="same") for i in range(4)]
    other.prune(["t"])  # keep_latest, from another process
    assert writer_saver.get_tuple(config("t", checkpoint_id=ids[0])) is None
    latest = writer_saver.get_tuple(config("t"))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"a": 3, "keep": "same"}
    other.delete_thread("t")
    assert writer_saver.get_tuple(config("t")) is None
    assert list(writer_saver.list(config("t"))) == []
    writer_saver.close()
    other.close()


def test_a_reused_caller_chosen_version_is_read_from_the_file(tmp_path: Path) -> None:
    # Versions not made by next_version may be stored again with another value:
    # such rows are never served from the cache.
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    first = saver.put(config("t"), checkpoint({"a": "one"}, {"a": 1}), {}, {"a": 1})
    saver.put(first, checkpoint({"a": "two"}, {"a": 1}), {}, {"a": 1})
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"a": "two"}
    saver.close()


def test_listing_history_slices_lists_instead_of_reading_chains(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    saver = SQLiteCheckpointer(conn, page_size=20)
    writer = Writer(saver, "t")
    messages: list[str] = []
    expected = []
    for i in range(60):
        messages = [*messages, f"m{i}"]
        writer.step(messages=messages, n=i)
        expected.append(list(messages))
    statements: list[str] = []
    traced(conn, statements)
    listed = list(saver.list(config("t")))
    conn.set_trace_callback(None)
    assert [t.checkpoint["channel_values"]["messages"] for t in listed] == expected[::-1]
    # The newest version is cached; each page slices its versions out of the
    # one it holds: no delta chain is read.
    assert not [s for s in statements if "b.chain = r.column4" in s]
    # Without the newest version in the page (`before`), the chains are read.
    before = listed[30].config
    traced(conn, statements)
    older = list(saver.list(config("t"), before=before, limit=5))
    conn.set_trace_callback(None)
    assert [t.checkpoint["channel_values"]["n"] for t in older] == [28, 27, 26, 25, 24]
    assert [t.checkpoint["channel_values"]["messages"] for t in older] == expected[28:23:-1]
    assert [s for s in statements if "b.chain = r.column4" in s]
    saver.close()
    conn.close()
