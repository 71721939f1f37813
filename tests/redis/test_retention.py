"""Retention: TTL by native key expiry, lazy cleanup of the threads index, keep_last."""

from __future__ import annotations

import time
from typing import Annotated, Any

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.checkpointers.redis import RedisCheckpointer
from checkpointkit.errors import ConfigurationError
from tests.redis.conftest import chat_graph, human, keys_under

TTL = 1.0  # seconds: long enough for a busy machine, short for the suite


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def thread_keys(client: Any, prefix: str, thread: str) -> set[bytes]:
    return {k for k in keys_under(client, prefix) if f"{{{thread}}}".encode() in k}


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_idle_thread_expires_leaving_no_keys(redis_url: str, redis_prefix: str, raw: Any) -> None:
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, ttl=TTL) as saver:
        graph = chat_graph(saver, reply_chars=20)
        graph.invoke({"messages": [human(0, 20)]}, cfg("idle"))
        graph.invoke({"messages": [human(0, 20)]}, cfg("busy"))
        keys = thread_keys(raw, redis_prefix, "idle")
        assert len(keys) == 4  # rows, index, blobs, writes
        assert all(0 < raw.pttl(k) <= TTL * 1000 for k in keys)
        # The busy thread keeps being written, which restarts its TTL.
        deadline = time.monotonic() + TTL * 2
        while time.monotonic() < deadline:
            graph.invoke({"messages": [human(1, 20)]}, cfg("busy"))
            time.sleep(TTL / 4)
        wait_until(lambda: not thread_keys(raw, redis_prefix, "idle"))
        # Before a listing, the threads index still names the idle thread...
        assert any(
            b"idle" in raw.zrange(b, 0, -1) for b in keys_under(raw, redis_prefix + "threads:")
        )
        # ... a listing meets it, drops the entry, and lists what is left.
        assert [t.thread_id for t in saver.list_threads()] == ["busy"]
        assert not any(
            b"idle" in raw.zrange(b, 0, -1) for b in keys_under(raw, redis_prefix + "threads:")
        )
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"busy"}
        assert not [k for k in keys_under(raw, redis_prefix) if b"idle" in k]
        assert saver.get_tuple(cfg("idle")) is None
        # The busy thread lost nothing.
        assert len(graph.get_state(cfg("busy")).values["messages"]) > 4


def test_listing_drops_expired_threads_from_list_none(
    redis_url: str, redis_prefix: str, raw: Any
) -> None:
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, ttl=TTL) as saver:
        chat_graph(saver, reply_chars=10).invoke({"messages": [human(0, 10)]}, cfg("gone"))
        wait_until(lambda: not thread_keys(raw, redis_prefix, "gone"))
        assert list(saver.list(None)) == []
        # Every bucket emptied, so Redis deleted it: nothing is left under the prefix.
        assert keys_under(raw, redis_prefix) == set()


def test_reads_refresh_the_ttl_only_when_asked(redis_url: str, redis_prefix: str, raw: Any) -> None:
    for refresh in (False, True):
        thread = f"read-{refresh}"
        with RedisCheckpointer.from_conn_string(
            redis_url, prefix=redis_prefix, ttl=2.0, refresh_on_read=refresh
        ) as saver:
            chat_graph(saver, reply_chars=10).invoke({"messages": [human(0, 10)]}, cfg(thread))
            key = next(iter(thread_keys(raw, redis_prefix, thread)))
            raw.pexpire(key, 500)
            saver.get_tuple(cfg(thread))
            list(saver.list(cfg(thread)))
            assert (raw.pttl(key) > 1000) is refresh


def test_a_thread_recreated_after_expiry_is_listed_again(
    redis_url: str, redis_prefix: str, raw: Any
) -> None:
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, ttl=TTL) as saver:
        graph = chat_graph(saver, reply_chars=10)
        graph.invoke({"messages": [human(0, 10)]}, cfg("phoenix"))
        wait_until(lambda: not thread_keys(raw, redis_prefix, "phoenix"))
        assert saver.list_threads() == []
        # This process announced the thread already; the put notices it is new again.
        graph.invoke({"messages": [human(1, 10)]}, cfg("phoenix"))
        assert [t.thread_id for t in saver.list_threads()] == ["phoenix"]


def test_a_listing_does_not_unindex_a_thread_written_since(
    saver: RedisCheckpointer, raw: Any, redis_prefix: str
) -> None:
    chat_graph(saver, reply_chars=10).invoke({"messages": [human(0, 10)]}, cfg("racer"))
    bucket = saver._layout.bucket("racer")
    score = raw.zscore(bucket, "racer")
    # A listing that saw the thread gone cleans up after a put re-created it:
    # the entry stays (checked on the thread's keys, in the same script).
    saver._unindex("racer", bucket, score)
    assert raw.zscore(bucket, "racer") == score
    raw.delete(*saver._layout.thread_keys("racer"))
    saver._unindex("racer", bucket, score)
    assert raw.zscore(bucket, "racer") is None


def test_keep_last_trims_each_namespace(redis_url: str, redis_prefix: str) -> None:
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, keep_last=4) as saver:
        graph = chat_graph(saver, reply_chars=10)
        for turn in range(12):
            graph.invoke({"messages": [human(turn, 10)]}, cfg("kept"))
        history = list(graph.get_state_history(cfg("kept")))
        assert 4 <= len(history) <= 4 + 4 // 10 + 1
        assert len(history[0].values["messages"]) == 24
        # Every kept checkpoint reads back whole.
        for snap in history:
            assert len(snap.values["messages"]) >= 20
        assert saver.storage_bytes("kept") < 0.6 * _untrimmed_bytes(redis_url, redis_prefix)


def _untrimmed_bytes(redis_url: str, redis_prefix: str) -> int:
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix + "all:") as saver:
        graph = chat_graph(saver, reply_chars=10)
        for turn in range(12):
            graph.invoke({"messages": [human(turn, 10)]}, cfg("all"))
        return saver.storage_bytes("all")


def extend(state: list[str] | None, writes: Any) -> list[str]:
    out = list(state or [])
    for w in writes:
        out.extend(w)
    return out


class Notes(TypedDict):
    notes: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=4)]


def notes_graph(saver: Any) -> Any:
    builder = StateGraph(Notes)
    builder.add_node("note", lambda s: {"notes": [f"note {len(s['notes'])}"]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    return builder.compile(checkpointer=saver)


def test_keep_last_keeps_what_delta_channels_rebuild_from(
    redis_url: str, redis_prefix: str
) -> None:
    expected = notes_graph(InMemorySaver())
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, keep_last=1) as saver:
        graph = notes_graph(saver)
        for i in range(10):
            graph.invoke({"notes": [f"user {i}"]}, cfg("notes"))
            expected.invoke({"notes": [f"user {i}"]}, cfg("notes"))
            assert graph.get_state(cfg("notes")).values == expected.get_state(cfg("notes")).values
        assert len(list(graph.get_state_history(cfg("notes")))) < 10


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": "1"},
        {"keep_last": 0},
        {"keep_last": True},
        {"refresh_on_read": True},
        {"prefix": "a{b}"},
        {"page_size": 0},
    ],
)
def test_bad_options_are_typed_errors(redis_url: str, options: dict[str, Any]) -> None:
    with (
        pytest.raises(ConfigurationError),
        RedisCheckpointer.from_conn_string(redis_url, **options),
    ):
        pass
