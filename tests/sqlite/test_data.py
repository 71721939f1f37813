"""What goes into the file comes back out: values, text, filters, errors, query counts."""

from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from checkpointkit.errors import ConfigurationError, CorruptDataError, SerializationError
from tests.contract.helpers import checkpoint, config

# --- helpers ----------------------------------------------------------------------


class Writer:
    """Puts successive checkpoints of one thread, like a graph would."""

    def __init__(self, saver: Any, thread_id: str, ns: str = "", fixed: bool = False) -> None:
        self.saver = saver
        self.fixed = fixed  # versions of a fixed length (next_version's vary)
        self.thread_id = thread_id
        self.ns = ns
        self.versions: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.head: str | None = None

    def step(self, metadata: dict[str, Any] | None = None, **changes: Any) -> str:
        new = {}
        for channel, value in changes.items():
            current = self.versions.get(channel)
            if self.fixed:
                n = int(current.split(".")[0]) + 1 if current else 1
                self.versions[channel] = f"{n:032}.{n / 1000:.16f}"
            else:
                self.versions[channel] = self.saver.get_next_version(current, None)
            new[channel] = self.versions[channel]
            self.values[channel] = value
        cp = checkpoint(dict(self.values), dict(self.versions))
        stored = self.saver.put(config(self.thread_id, self.ns, self.head), cp, metadata or {}, new)
        self.head = stored["configurable"]["checkpoint_id"]
        return str(self.head)


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    out = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("ck_checkpoints", "ck_blobs", "ck_writes", "ck_metadata", "ck_threads")
    }
    out["schema"] = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    conn.close()
    return out


# --- filters ------------------------------------------------------------------------


def test_an_injection_in_a_filter_key_matches_nothing_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    writer = Writer(saver, "t")
    for i in range(3):
        writer.step({"user": "u1", "step": i}, a=i)
    before = counts(path)
    for key in ["x') OR 1=1 --", "user' OR '1'='1", 'user"; DROP TABLE ck_blobs; --', "$.user"]:
        assert list(saver.list(config("t"), filter={key: "u1"})) == []
        assert list(saver.list(None, filter={key: "u1"})) == []
        assert saver.list_threads(filter={key: "u1"}) == []
    assert list(saver.list(None, filter={"user": "u1' OR '1'='1"})) == []
    assert counts(path) == before
    assert len(list(saver.list(None, filter={"user": "u1"}))) == 3
    saver.close()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from([0, 1, -1, 1.0, 0.0, -0.0, True, False, "1", "", "a" * 70, "a" * 71])
    | st.text(max_size=80)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
keys = st.sampled_from(["a", "b", "c"])


def test_metadata_filters_match_exactly_like_the_memory_checkpointer(tmp_path: Path) -> None:
    sqlite_saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    memory_saver = MemoryCheckpointer()
    counter = iter(range(10**6))

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        metas=st.lists(st.dictionaries(keys, json_values, max_size=3), min_size=1, max_size=5),
        probe=st.data(),
    )
    def check(metas: list[dict[str, Any]], probe: st.DataObject) -> None:
        thread_id = f"t{next(counter)}"
        for saver in (sqlite_saver, memory_saver):
            writer = Writer(saver, thread_id)
            for i, meta in enumerate(metas):
                writer.step(meta, a=i)
        # filters built from stored values (equal ones in another type too) or fresh ones
        stored = [(k, v) for meta in metas for k, v in meta.items()]
        pairs = probe.draw(
            st.lists(
                st.sampled_from(stored) | st.tuples(keys, json_values) if stored
                else st.tuples(keys, json_values),
                max_size=2,
            )
        )  # fmt: skip
        wanted = dict(pairs)
        for scope in (config(thread_id), None):
            got = [
                t.checkpoint["channel_values"]["a"]
                for t in sqlite_saver.list(scope, filter=wanted)
                if t.config["configurable"]["thread_id"] == thread_id
            ]
            expected = [
                t.checkpoint["channel_values"]["a"]
                for t in memory_saver.list(scope, filter=wanted)
                if t.config["configurable"]["thread_id"] == thread_id
            ]
            assert got == expected, wanted
        ours = {t.thread_id for t in sqlite_saver.list_threads(filter=wanted)}
        theirs = {t.thread_id for t in memory_saver.list_threads(filter=wanted)}
        assert (thread_id in ours) == (thread_id in theirs)

    check()
    sqlite_saver.close()


def test_numbers_match_across_int_float_and_bool_like_python(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    writer = Writer(saver, "t")
    writer.step({"n": 1}, a="int")
    writer.step({"n": 1.0}, a="float")
    writer.step({"n": True}, a="bool")
    writer.step({"n": 2**64 + 1}, a="huge")
    writer.step({"n": [1, {"x": 2}]}, a="list")
    found = [t.checkpoint["channel_values"]["a"] for t in saver.list(None, filter={"n": 1})]
    assert found == ["bool", "float", "int"]  # 1 == 1.0 == True in Python
    assert [
        t.checkpoint["channel_values"]["a"] for t in saver.list(None, filter={"n": 2**64})
    ] == []
    huge = saver.list(None, filter={"n": 2**64 + 1})
    assert [t.checkpoint["channel_values"]["a"] for t in huge] == ["huge"]
    nested = saver.list(None, filter={"n": [True, {"x": 2.0}]})
    assert [t.checkpoint["channel_values"]["a"] for t in nested] == ["list"]
    saver.close()


# --- values and text ---------------------------------------------------------------------


def test_a_20_mb_value_round_trips(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    big = os.urandom(20 * 1024 * 1024)
    text = "x\x00ü" * (2 * 1024 * 1024)
    writer = Writer(saver, "t")
    writer.step(big=big, text=text)
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["big"] == big
    assert tup.checkpoint["channel_values"]["text"] == text
    assert saver.storage_bytes("t") > 20 * 1024 * 1024
    saver.close()


def test_nul_characters_and_any_unicode_round_trip(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    # Ids and channel names take any unicode but NUL (refused by the core for
    # every backend); values and metadata take NUL too.
    thread_id = "thread ünï 🙂 \u202e"
    ns = "sub graph:ä"
    values = {
        "text": "α\x00β\U0001f600\ud7ff",
        "chännel": ["a\x00", {"k\x00": "v\x00"}],
        "messages": [HumanMessage(content="nul \x00 inside", id="m\x001"), AIMessage(content="🙂")],
    }
    metadata = {"kéy\x00": "välue", "nested": {"n\x00ul": "\x00"}, "ëmoji": "🙂"}
    for space in ("", ns):
        writer = Writer(saver, thread_id, space)
        writer.step(metadata, **values)
        tup = saver.get_tuple(config(thread_id, space))
        assert tup is not None
        assert tup.checkpoint["channel_values"] == values
        assert tup.metadata["nested"] == {"n\x00ul": "\x00"}
        assert tup.metadata["kéy\x00"] == "välue"
    listed = list(saver.list(None, filter={"ëmoji": "🙂", "nested": {"n\x00ul": "\x00"}}))
    assert len(listed) == 2
    assert [t.thread_id for t in saver.list_threads()] == [thread_id]
    assert saver.list_threads()[0].metadata["nested"] == {"n\x00ul": "\x00"}
    with pytest.raises(ConfigurationError, match="NUL"):
        Writer(saver, "thread\x00").step(a=1)
    saver.close()


def test_a_lone_surrogate_in_metadata_is_stored(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    Writer(saver, "t").step({"odd": "\ud800x", "k\udfff": 1}, a=1)
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.metadata["odd"] == "\ud800x"
    assert len(list(saver.list(None, filter={"odd": "\ud800x"}))) == 1
    saver.close()


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("UPDATE ck_checkpoints SET skeleton = x'c1c1c1'", "skeleton"),
        ("UPDATE ck_checkpoints SET skeleton = 'text, not bytes'", "malformed"),
        ("UPDATE ck_checkpoints SET metadata = '{not json'", "metadata"),
        ("UPDATE ck_blobs SET kind = 42", "malformed"),
        ("UPDATE ck_blobs SET payload = x'c1' WHERE kind = 0", "cannot be decoded"),
        ("UPDATE ck_writes SET payload = x'c1'", "cannot be decoded"),
    ],
)
def test_a_corrupt_stored_row_is_corrupt_data_error(tmp_path: Path, sql: str, match: str) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    writer = Writer(saver, "t")
    writer.step(a={"x": 1}, messages=["m1"])
    saver.put_writes(config("t", checkpoint_id=writer.head), [("a", 2)], "task")
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    saver.close()
    # Read as another process would: the writer serves the value rows it
    # stored from its own cache (see `_rowcache`), a reader finds the damage.
    reader = SQLiteCheckpointer(path)
    with pytest.raises(CorruptDataError, match=match):
        reader.get_tuple(config("t"))
    with pytest.raises(CorruptDataError):
        list(reader.list(config("t")))
    reader.close()


def test_a_failure_inside_the_put_transaction_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    writer = Writer(saver, "t")
    writer.step(a=1, messages=["m1"])
    before = counts(path)
    # the last statement of a put fails: blobs and checkpoint rows went in first
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TRIGGER boom BEFORE UPDATE ON ck_threads BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        writer.step(a=2, messages=["m1", "m2"])
    conn.execute("DROP TRIGGER boom")
    conn.commit()
    conn.close()
    assert counts(path) == before
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"a": 1, "messages": ["m1"]}
    saver.close()


def test_unserializable_metadata_is_typed_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    Writer(saver, "t").step(a=1)
    before = counts(path)
    with pytest.raises(SerializationError, match="bad"):
        Writer(saver, "t2").step({"bad": object()}, a=1)
    assert counts(path) == before
    saver.close()


# --- query counts ---------------------------------------------------------------------------


def test_list_reads_a_page_in_a_constant_number_of_statements(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    saver = SQLiteCheckpointer(conn, page_size=40)
    writer = Writer(saver, "t")
    messages: list[Any] = []
    for i in range(300):
        messages = [*messages, HumanMessage(content=f"message {i}", id=f"m{i}")]
        if i % 50 == 49:  # now and then a non-append edit
            messages = messages[1:]
        writer.step({"step": i, "kind": i % 3}, messages=messages, step=i)
        if i % 7 == 0:
            saver.put_writes(config("t", checkpoint_id=writer.head), [("step", -i)], f"task{i}")
    saver._core.forget()  # read like another process would: no cached lists
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    tuples = list(saver.list(config("t")))
    conn.set_trace_callback(None)
    assert len(tuples) == 300
    assert tuples[0].checkpoint["channel_values"]["messages"] == messages
    pages = 300 // 40 + 1
    page_queries = [s for s in statements if s.startswith("SELECT c.thread_id")]
    assert len(page_queries) == pages
    # BEGIN, the page, its blobs, their delta chains, their writes, COMMIT
    assert len(statements) <= 6 * pages
    # with a filter and a limit: still one page query per page
    statements.clear()
    conn.set_trace_callback(statements.append)
    some = list(saver.list(config("t"), filter={"kind": 1}, limit=90))
    conn.set_trace_callback(None)
    assert len(some) == 90
    assert all(t.metadata["kind"] == 1 for t in some)
    assert len(statements) <= 6 * math.ceil(90 / 40)
    saver.close()
    conn.close()


def test_get_state_history_of_a_long_thread_reads_pages(tmp_path: Path) -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    conn = sqlite3.connect(tmp_path / "db.sqlite", check_same_thread=False)
    saver = SQLiteCheckpointer(conn, page_size=50)
    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda s: {"messages": [AIMessage(content="ok")]})
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    graph = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "t"}}
    for i in range(70):
        graph.invoke({"messages": [HumanMessage(content=f"hi {i}")]}, cfg)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    history = list(graph.get_state_history(cfg))
    conn.set_trace_callback(None)
    assert len(history) == 210
    assert len(history[0].values["messages"]) == 140
    assert len(statements) <= 6 * (210 // 50 + 1)
    saver.close()
    conn.close()


def test_storage_bytes_counts_like_the_memory_checkpointer(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    memory = MemoryCheckpointer()
    for target in (saver, memory):
        writer = Writer(target, "t", fixed=True)
        messages: list[Any] = []
        for i in range(20):
            messages = [*messages, f"message {i}"]
            writer.step({"step": i, "who": "ännä"}, messages=messages, n=i)
            target.put_writes(config("t", checkpoint_id=writer.head), [("n", i)], "task")
        Writer(target, "t2", fixed=True).step(a=b"\x00" * 100)
    assert saver.storage_bytes() == memory.storage_bytes()
    assert saver.storage_bytes("t") == memory.storage_bytes("t")
    assert saver.storage_bytes("missing") == memory.storage_bytes("missing") == 0
    saver.close()


def test_a_lone_surrogate_in_an_id_is_a_configuration_error(tmp_path: Path) -> None:
    from checkpointkit.errors import ConfigurationError

    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    Writer(saver, "t").step(a=1)
    before = counts(path)
    with pytest.raises(ConfigurationError, match="surrogate"):
        Writer(saver, "bad\ud800").step(a=1)
    assert counts(path) == before
    saver.close()
