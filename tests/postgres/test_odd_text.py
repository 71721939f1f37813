"""Text PostgreSQL cannot hold: a NUL character or a lone surrogate, wherever a caller puts it.

Each one either round-trips (metadata, values: stored as bytes) or is refused
with a checkpointkit error before anything is sent, so nothing partial is
stored; never ``psycopg.DataError`` or ``UnicodeEncodeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from checkpointkit.errors import ConfigurationError, InvalidFilterError
from tests.contract.helpers import checkpoint, config, new_thread

ODD = pytest.mark.parametrize("odd", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])

# Where a put can carry odd text, and whether it comes back as the memory
# saver gives it back (True) or is refused (False). None: a run id is copied
# into a text column, so a lone surrogate is refused, but the NUL that
# LangGraph strips from top-level metadata strings is gone before the put.
PUT_PLACES: dict[str, bool | None] = {
    "thread_id": False,
    "checkpoint_ns": False,
    "checkpoint_id": False,
    "parent_id": False,
    "channel": False,
    "ts": False,
    "version": False,
    "run_id": None,
    "metadata_key": True,
    "metadata_value": True,
    "nested_metadata": True,
    "value": True,
}


def _put_args(place: str, odd: str) -> tuple[Any, ...]:
    thread_id = odd if place == "thread_id" else new_thread()
    ns = odd if place == "checkpoint_ns" else ""
    channel = odd if place == "channel" else "messages"
    value = [f"item {odd}"] if place == "value" else ["item"]
    version = odd if place == "version" else "1"
    cp = checkpoint({channel: value, "count": 1}, {channel: version, "count": "1"})
    if place == "checkpoint_id":
        cp["id"] = odd
    if place == "ts":
        cp["ts"] = odd
    metadata: dict[str, Any] = {"source": "loop", "step": 1, "parents": {}}
    if place == "metadata_key":
        metadata[odd] = 1
    if place == "metadata_value":
        metadata["note"] = odd
    if place == "nested_metadata":
        metadata["nested"] = {odd: [odd]}
    if place == "run_id":
        metadata["run_id"] = odd
    parent = odd if place == "parent_id" else None
    return config(thread_id, ns, parent), cp, metadata, {channel: version, "count": "1"}


def _nothing_stored(saver: PostgresCheckpointer) -> None:
    assert saver.storage_bytes() == 0
    assert saver.list_threads() == []
    assert list(saver.list(None)) == []


@ODD
@pytest.mark.parametrize("place", sorted(PUT_PLACES))
def test_a_put_round_trips_or_is_refused_whole(
    saver: PostgresCheckpointer, place: str, odd: str
) -> None:
    args = _put_args(place, odd)
    expected = PUT_PLACES[place]
    if expected is None:  # either outcome, as long as it is one of the two
        expected = not (place == "run_id" and odd.startswith("a\ud800"))
    if not expected:
        with pytest.raises(ConfigurationError) as caught:
            saver.put(*args)
        assert repr(odd) in str(caught.value)  # the message names the offending text
        _nothing_stored(saver)
        return
    memory = MemoryCheckpointer()
    tup, mirrored = saver.get_tuple(saver.put(*args)), memory.get_tuple(memory.put(*args))
    assert tup is not None
    assert mirrored is not None
    assert tup.metadata == mirrored.metadata
    assert tup.checkpoint == mirrored.checkpoint


@ODD
@pytest.mark.parametrize("place", ["thread_id", "checkpoint_ns", "channel", "metadata_key"])
async def test_the_async_put_refuses_or_round_trips_the_same(
    asaver: AsyncPostgresCheckpointer, place: str, odd: str
) -> None:
    cfg, cp, metadata, versions = _put_args(place, odd)
    if not PUT_PLACES[place]:
        with pytest.raises(ConfigurationError):
            await asaver.aput(cfg, cp, metadata, versions)
        assert await asaver.astorage_bytes() == 0
        return
    stored = await asaver.aput(cfg, cp, metadata, versions)
    tup = await asaver.aget_tuple(stored)
    assert tup is not None
    assert tup.metadata == metadata


@ODD
@pytest.mark.parametrize("place", ["task_id", "task_path", "channel", "value"])
def test_put_writes_round_trips_or_is_refused_whole(
    saver: PostgresCheckpointer, place: str, odd: str
) -> None:
    cfg, cp, metadata, versions = _put_args("none", odd)
    stored = saver.put(cfg, cp, metadata, versions)
    saver.put_writes(stored, [("count", 2)], "first-task")
    task_id = odd if place == "task_id" else "task"
    task_path = odd if place == "task_path" else "~path"
    # a good write before the odd one: refused together, never half stored
    writes = [("count", 3), (odd if place == "channel" else "messages", [f"w {odd}"])]
    if place == "value":
        saver.put_writes(stored, writes, task_id, task_path)
        tup = saver.get_tuple(stored)
        assert tup is not None
        assert ("task", "messages", [f"w {odd}"]) in (tup.pending_writes or [])
        return
    with pytest.raises(ConfigurationError):
        saver.put_writes(stored, writes, task_id, task_path)
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [("first-task", "count", 2)]


# Every other way a caller passes a thread id, namespace, checkpoint id or channel name.
OTHER_CALLS: dict[str, Callable[[PostgresCheckpointer, str, Any], Any]] = {
    "get_tuple thread": lambda s, o, c: s.get_tuple(config(o)),
    "get_tuple namespace": lambda s, o, c: s.get_tuple(config("t", o)),
    "get_tuple checkpoint id": lambda s, o, c: s.get_tuple(config("t", "", o)),
    "list thread": lambda s, o, c: list(s.list(config(o))),
    "list before": lambda s, o, c: list(s.list(None, before=config("t", "", o))),
    "list_metadata namespace": lambda s, o, c: list(s.list_metadata(config("t", o))),
    "delete_thread": lambda s, o, c: s.delete_thread(o),
    "delete_for_runs": lambda s, o, c: s.delete_for_runs([o]),
    "prune": lambda s, o, c: s.prune([o]),
    "copy_thread source": lambda s, o, c: s.copy_thread(o, new_thread()),
    "copy_thread target": lambda s, o, c: s.copy_thread(c["configurable"]["thread_id"], o),
    "fork_thread source": lambda s, o, c: s.fork_thread(config(o), new_thread()),
    "fork_thread target": lambda s, o, c: s.fork_thread(c, o),
    "delta history channel": lambda s, o, c: s.get_delta_channel_history(config=c, channels=[o]),
    "storage_bytes": lambda s, o, c: s.storage_bytes(o),
}


@ODD
@pytest.mark.parametrize("call", sorted(OTHER_CALLS))
def test_reads_and_maintenance_refuse_odd_keys_with_a_typed_error(
    saver: PostgresCheckpointer, call: str, odd: str
) -> None:
    cfg, cp, metadata, versions = _put_args("none", odd)
    stored = saver.put(cfg, cp, metadata, versions)
    before = saver.storage_bytes()
    with pytest.raises(ConfigurationError):
        OTHER_CALLS[call](saver, odd, stored)
    assert saver.storage_bytes() == before
    assert saver.get_tuple(stored) is not None


FILTERS: dict[str, Callable[[Any, str], Any]] = {
    "list": lambda s, o: [t.config for t in s.list(None, filter={o: o, "n": {o: [o]}})],
    "list_threads": lambda s, o: [t.thread_id for t in s.list_threads(filter={"n": {o: [o]}})],
}


@ODD
@pytest.mark.parametrize("call", sorted(FILTERS))
def test_metadata_filters_with_odd_text_match_like_the_memory_saver(
    saver: PostgresCheckpointer, call: str, odd: str
) -> None:
    memory = MemoryCheckpointer()
    cfg, cp, _, versions = _put_args("none", odd)
    metadata = {"source": "loop", "step": 1, "parents": {}, odd: odd, "n": {odd: [odd]}}
    saver.put(cfg, cp, metadata, versions)
    memory.put(cfg, cp, metadata, versions)
    try:
        expected = FILTERS[call](memory, odd)
    except InvalidFilterError:
        with pytest.raises(InvalidFilterError):
            FILTERS[call](saver, odd)
        return
    assert expected  # the filter matches the checkpoint
    assert FILTERS[call](saver, odd) == expected
