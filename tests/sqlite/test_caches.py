"""The per-process caches of the read path: never shared objects, never stale values.

A process keeps stored value rows (`_rowcache`), decoded plain values and
skeletons (`_decoded`). These tests mutate what reads return, check that the
decoded templates are exactly what decoding gives, and change the file from
another process (deleting and re-creating a thread) between reads.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from checkpointkit.checkpointers.sqlite._decoded import DecodedCache, SQLiteCore, plain_copy
from checkpointkit.serde import CompressedSerializer, MsgpackSerializer
from tests.contract.helpers import checkpoint, config
from tests.sqlite import _workers
from tests.sqlite.test_data import Writer
from tests.sqlite.test_rowcache import traced


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0 nor True here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def nested() -> dict[str, Any]:
    return {"a": [1, {"b": [2, 3]}], "t": (4, [5]), "s": "x", "n": None}


# --- fresh objects -----------------------------------------------------------------


@pytest.mark.parametrize("reader", ["writer", "other"], ids=["wrote-it", "read-it"])
def test_editing_what_a_read_returned_changes_no_later_read(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    writer = Writer(saver, "t")
    writer.step({"source": "loop", "deep": {"k": [1]}}, plain=nested(), flat={"n": 1}, word="w")
    saver.put_writes(config("t", checkpoint_id=writer.head), [("plain", nested())], "task")
    # the writer's own templates come from the put; another saver's from decoding
    other = saver if reader == "writer" else SQLiteCheckpointer(path)
    for _ in range(3):
        tup = other.get_tuple(config("t"))
        assert tup is not None
        values = tup.checkpoint["channel_values"]
        assert same(values["plain"], nested())
        assert values["flat"] == {"n": 1}
        assert same(tup.pending_writes, [("task", "plain", nested())])
        assert tup.metadata["deep"] == {"k": [1]}
        # a caller (or LangGraph's loop) edits everything it got, in place
        values["plain"]["a"][1]["b"].append(99)
        values["plain"]["t"][1].append(99)
        values["flat"]["n"] = 2
        tup.pending_writes[0][2]["a"].clear()  # type: ignore[index]
        tup.checkpoint["channel_versions"]["plain"] = "edited"
        tup.checkpoint["versions_seen"]["node"] = {"x": 1}
        tup.checkpoint["updated_channels"].append("edited")  # type: ignore[union-attr]
        tup.metadata["deep"]["k"].append(2)  # type: ignore[typeddict-item]
    listed = list(other.list(config("t")))
    assert same(listed[0].checkpoint["channel_values"]["plain"], nested())
    assert listed[0].checkpoint["channel_versions"]["plain"] == writer.versions["plain"]
    assert "node" not in listed[0].checkpoint["versions_seen"]
    saver.close()
    other.close()


def test_a_value_edited_after_its_put_is_read_back_as_it_was_put(tmp_path: Path) -> None:
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    value = {"items": [1, 2]}
    Writer(saver, "t").step(v=value)
    value["items"].append(3)  # the graph goes on editing its own object
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["v"] == {"items": [1, 2]}
    saver.close()


# --- templates are exactly what decoding gives --------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_plain = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(-9, 9), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(value=_plain)
@settings(max_examples=300, deadline=None)
def test_a_plain_value_kept_at_put_is_what_decoding_gives(value: Any) -> None:
    serde = MsgpackSerializer()
    template = plain_copy(value, 1000)
    assert same(template, serde.loads_typed(serde.dumps_typed(value)))
    assert template is not value or not isinstance(value, (dict, list))


_version = (
    st.from_regex(r"\A[0-9]{32}\.[0-9]\.[0-9]{14}\Z")
    | st.integers(0, 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
# channel names as the core accepts them (no NUL, no lone surrogate)
_name = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=5,
)


@given(
    versions=st.dictionaries(_name, _version, max_size=5),
    seen=st.dictionaries(_name, st.dictionaries(_name, _version, max_size=3), max_size=3),
    extra=st.dictionaries(st.sampled_from(["x", "y", "pending_sends"]), _plain, max_size=2),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_skeleton_kept_at_put_is_what_decoding_gives(
    versions: dict[str, Any], seen: dict[str, Any], extra: dict[str, Any]
) -> None:
    writer = SQLiteCore(MsgpackSerializer())
    cp: Any = {**checkpoint({}, versions), "versions_seen": seen, **extra}
    plan = writer.plan_put(config("t"), cp, {}, {})
    writer.learn_put(plan, cp)
    fresh = SQLiteCore(MsgpackSerializer())  # decodes the bytes itself
    decoded = fresh.decode_skeleton(plan.checkpoint.skeleton, cp["id"])
    assert same(writer.decode_skeleton(plan.checkpoint.skeleton, cp["id"]), decoded)


def test_only_plain_values_and_our_serializer_make_templates(tmp_path: Path) -> None:
    assert plain_copy({"a": object()}) is plain_copy(object())  # the miss marker
    assert plain_copy([[1]] * 100, limit=10) is plain_copy(object())  # too big to copy
    assert plain_copy({1: 2}, skeleton=True) is plain_copy(object())  # skeleton keys are text
    wrapped = SQLiteCheckpointer(tmp_path / "db.sqlite", serde=CompressedSerializer())
    Writer(wrapped, "t").step(v={"n": 1})
    core = wrapped._core
    assert isinstance(core, SQLiteCore)
    assert not core.values._items  # another serializer: learnt only by decoding
    tup = wrapped.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["v"] == {"n": 1}
    wrapped.close()


def test_the_decoded_cache_is_bounded() -> None:
    cache = DecodedCache(size=16)
    for i in range(100):
        cache.put(("t", bytes([i])), ({"i": i}, {}))  # a template and its plan
    assert len(cache._items) <= 16
    assert cache.get(("t", bytes([99]))) == {"i": 99}
    cache.clear()
    assert ("t", bytes([99])) not in cache


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
