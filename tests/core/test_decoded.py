"""The core's decoded-value cache, on every backend: fresh copies, never stale, bounded.

`StorageCore` keeps decoded plain values, skeletons and metadata keyed by
their stored bytes (`checkpointers._decoded`). These tests check that the
templates are exactly what decoding gives, that reads through each backend
(memory, SQLite, PostgreSQL, Redis; sync and async) are served from the cache,
that editing what a read returned changes no later read, and that a thread
deleted and re-created under the same versions is read as newly stored.
SQLite's cross-process test is in ``tests/sqlite/test_caches.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers._decoded import DecodedCache, plain_copy
from checkpointkit.checkpointers.base import StorageCore
from checkpointkit.serde import CompressedSerializer, MsgpackSerializer
from tests.contract.conftest import Api
from tests.contract.helpers import checkpoint, config, new_thread


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


class Thread:
    """Puts checkpoints on one thread through `Api`, each building on the last."""

    def __init__(self, api: Api, thread_id: str | None = None) -> None:
        self.api = api
        self.thread_id = thread_id or new_thread()
        self.head: str | None = None
        self.versions: dict[str, Any] = {}
        self.values: dict[str, Any] = {}

    async def step(
        self,
        metadata: dict[str, Any] | None = None,
        versions: dict[str, Any] | None = None,
        **values: Any,
    ) -> str:
        """Put the next checkpoint; `versions`: the new versions (default: the saver's next)."""
        saver = self.api.saver
        new = {}
        for channel, value in values.items():
            self.values[channel] = value
            self.versions[channel] = new[channel] = (
                versions[channel]
                if versions is not None
                else saver.get_next_version(self.versions.get(channel), None)
            )
        cp = checkpoint(dict(self.values), dict(self.versions))
        parent = config(self.thread_id, checkpoint_id=self.head)
        stored = await self.api.put(parent, cp, metadata or {"source": "loop"}, new)
        self.head = str(stored["configurable"]["checkpoint_id"])
        return self.head


class Decodes:
    """Counts the values a serializer decodes (its class stays `MsgpackSerializer`)."""

    def __init__(self, serde: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        loads = serde.loads_typed

        def counted(data: tuple[str, bytes]) -> Any:
            self.count += 1
            return loads(data)

        monkeypatch.setattr(serde, "loads_typed", counted)


def core_of(saver: BaseCheckpointSaver[Any]) -> StorageCore:
    core = getattr(saver, "_core", None)
    assert isinstance(core, StorageCore), f"{type(saver).__name__} has no storage core"
    return core


# --- through every backend ------------------------------------------------------------


@pytest.mark.parametrize("reader", ["writer", "fresh"], ids=["wrote-it", "read-it"])
async def test_every_backend_reads_plain_values_from_the_cache(
    api: Api, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = Thread(api)
    await thread.step({"source": "loop", "deep": {"k": [1]}}, plain=nested(), n=1)
    head = await thread.step(word="w")
    await api.put_writes(config(thread.thread_id, checkpoint_id=head), [("n", 2)], "task")
    if reader == "fresh":  # a process that never wrote these rows: it decodes them once
        api.saver._core = core_of(api.saver).with_serde(api.saver.serde)  # type: ignore[attr-defined]
    core = core_of(api.saver)
    decodes = Decodes(core.serde, monkeypatch)
    first = await api.get_tuple(config(thread.thread_id))
    assert first is not None
    # plain values, the write, skeleton and metadata are all templates now
    assert decodes.count == (0 if reader == "writer" else 4)  # plain, n, word, the write
    assert len(core.decoded.skeletons) >= 1
    assert len(core.decoded.metadata) >= 1
    decodes.count = 0
    for _ in range(2):
        again = await api.get_tuple(config(thread.thread_id))
        assert again is not None
        assert decodes.count == 0  # served from the cache, not decoded again
        assert same(again.checkpoint, first.checkpoint)
        assert same(again.metadata, first.metadata)
        assert same(again.pending_writes, [("task", "n", 2)])
        assert same(again.checkpoint["channel_values"]["plain"], nested())


async def test_editing_what_a_read_returned_changes_no_later_read(api: Api) -> None:
    thread = Thread(api)
    await thread.step(plain=nested(), flat={"n": 1})
    head = await thread.step({"source": "loop", "deep": {"k": [1]}}, word="w")
    await api.put_writes(config(thread.thread_id, checkpoint_id=head), [("plain", nested())], "t")
    versions = dict(thread.versions)
    for _ in range(3):
        tup = await api.get_tuple(config(thread.thread_id))
        assert tup is not None
        values = tup.checkpoint["channel_values"]
        assert same(values["plain"], nested())
        assert values["flat"] == {"n": 1}
        assert same(tup.pending_writes, [("t", "plain", nested())])
        assert tup.metadata["deep"] == {"k": [1]}  # type: ignore[typeddict-item]
        assert tup.checkpoint["channel_versions"] == versions
        # a caller (or LangGraph's loop) edits everything it got, in place
        values["plain"]["a"][1]["b"].append(99)
        values["plain"]["t"][1].append(99)
        values["flat"]["n"] = 2
        tup.pending_writes[0][2]["a"].clear()  # type: ignore[index]
        tup.checkpoint["channel_versions"]["plain"] = "edited"
        tup.checkpoint["versions_seen"]["node"] = {"x": 1}
        tup.metadata["deep"]["k"].append(2)  # type: ignore[typeddict-item]
    listed = await api.list(config(thread.thread_id))
    assert same(listed[0].checkpoint["channel_values"]["plain"], nested())
    assert listed[0].checkpoint["channel_versions"] == versions
    assert "node" not in listed[0].checkpoint["versions_seen"]


async def test_a_value_edited_after_its_put_is_read_back_as_it_was_put(api: Api) -> None:
    value = {"items": [1, 2]}
    thread = Thread(api)
    await thread.step(v=value)
    value["items"].append(3)  # the graph goes on editing its own object
    tup = await api.get_tuple(config(thread.thread_id))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["v"] == {"items": [1, 2]}


async def test_a_thread_recreated_under_the_same_versions_is_read_as_stored(api: Api) -> None:
    # The cache is keyed by stored bytes, not by place: deleting a thread
    # needs no invalidation, and another process may do it just as well.
    first = Thread(api)
    await first.step({"run": "one"}, a={"v": 1}, b=["x"])
    for _ in range(2):
        tup = await api.get_tuple(config(first.thread_id))
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"a": {"v": 1}, "b": ["x"]}
    await api.delete_thread(first.thread_id)
    again = Thread(api, first.thread_id)
    await again.step({"run": "two"}, first.versions, a={"v": 2}, b=["y"])
    tup = await api.get_tuple(config(first.thread_id))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"a": {"v": 2}, "b": ["y"]}
    assert tup.metadata["run"] == "two"  # type: ignore[typeddict-item]


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


@given(value=_plain)
@settings(max_examples=100, deadline=None)
def test_a_value_put_reads_back_the_same_from_its_writer_and_a_fresh_core(value: Any) -> None:
    writer = MemoryCheckpointer()
    cp = checkpoint({"v": value}, {"v": 1})
    writer.put(config("t"), cp, {}, {"v": 1})
    reader = writer._core.with_serde(writer.serde)  # decodes the bytes itself
    blob = next(iter(writer._threads["t"].blobs[""].values()))
    assert same(writer._core._load_blob(blob), reader._load_blob(blob))


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
    writer = StorageCore(MsgpackSerializer())
    cp: Any = {**checkpoint({}, versions), "versions_seen": seen, **extra}
    plan = writer.plan_put(config("t"), cp, {}, {})  # keeps the skeleton it encodes
    fresh = StorageCore(MsgpackSerializer())  # decodes the bytes itself
    decoded = fresh.decode_skeleton(plan.checkpoint.skeleton, cp["id"])
    assert same(writer.decode_skeleton(plan.checkpoint.skeleton, cp["id"]), decoded)


def test_only_plain_values_and_our_serializer_make_templates_at_put() -> None:
    assert plain_copy({"a": object()}) is plain_copy(object())  # the miss marker
    assert plain_copy([[1]] * 100, limit=10) is plain_copy(object())  # too big to copy
    assert plain_copy({1: 2}, skeleton=True) is plain_copy(object())  # skeleton keys are text
    wrapped = MemoryCheckpointer(serde=CompressedSerializer())
    wrapped.put(config("t"), checkpoint({"v": {"n": 1}}, {"v": 1}), {}, {"v": 1})
    core = wrapped._core
    assert not core.decoded.values  # another serializer: learnt only by decoding
    tup = wrapped.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["v"] == {"n": 1}
    assert len(core.decoded.values) == 1


def test_the_cache_can_be_turned_off() -> None:
    core = StorageCore(MsgpackSerializer(), decoded_cache=False)
    cp = checkpoint({"v": {"n": 1}}, {"v": 1})
    plan = core.plan_put(config("t"), cp, {"step": 1}, {"v": 1})
    assert core.decode_skeleton(plan.checkpoint.skeleton)["channel_versions"] == {"v": 1}
    assert core.decode_metadata(plan.checkpoint.metadata)["step"] == 1
    assert core._load_blob(plan.blobs[0]) == {"n": 1}
    assert not core.decoded.values
    assert not core.decoded.skeletons
    assert not core.decoded.metadata
    assert not core.with_serde(core.serde).decoded.enabled


def test_metadata_decodes_through_the_class_too() -> None:
    # Backends' summary helpers decode metadata without a core at hand.
    assert StorageCore.decode_metadata('{"a": [1]}') == {"a": [1]}
    core = StorageCore(MsgpackSerializer())
    first = core.decode_metadata('{"a": [1]}')
    first["a"].append(2)
    assert core.decode_metadata('{"a": [1]}') == {"a": [1]}


def test_the_decoded_cache_is_bounded() -> None:
    cache = DecodedCache(size=16)
    for i in range(100):
        cache.put(("t", bytes([i])), ({"i": i}, {}))  # a template and its plan
    assert len(cache) <= 16
    assert cache.get(("t", bytes([99]))) == {"i": 99}
    cache.clear()
    assert ("t", bytes([99])) not in cache
