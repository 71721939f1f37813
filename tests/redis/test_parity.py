"""``list`` behaves exactly like the memory checkpointer, and filters cannot inject anything."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import ERROR, INTERRUPT, CheckpointTuple
from langgraph.checkpoint.base.id import uuid6

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.redis import RedisCheckpointer
from tests.redis.conftest import snapshot

THREADS = ("alpha", "beta", "gamma {x}")
SPACES = ("", "sub:1", "sub:1|inner:2")


# Checkpoint ids are time-ordered: made once, so both savers get the same.
CHECKPOINT_IDS = [str(uuid6(clock_seq=n)) for n in range(len(THREADS) * len(SPACES) * 5)]


def put_history(target: Any) -> dict[str, list[str]]:
    """Put interleaved checkpoints in three threads and three namespaces; return ids per key."""
    ids: dict[str, list[str]] = {}
    heads: dict[tuple[str, str], dict[str, Any]] = {}
    steps = itertools.product(range(5), THREADS, SPACES)
    for n, (step, thread, ns) in enumerate(steps):
        if ns == "sub:1|inner:2" and step % 2:
            continue
        head = heads.get((thread, ns), {"messages": [], "version": 0, "id": None})
        messages = [*head["messages"], HumanMessage(content=f"{thread}/{ns}/{step}", id=f"m{n}")]
        version = f"{head['version'] + 1:032}.{0.25:016}"
        checkpoint_id = CHECKPOINT_IDS[n]
        checkpoint = {
            "v": 4, "id": checkpoint_id, "ts": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}",
            "channel_values": {"messages": messages, "step": step},
            "channel_versions": {"messages": version, "step": version},
            "versions_seen": {"node": {"messages": version}}, "updated_channels": ["messages"],
        }  # fmt: skip
        metadata = {
            "source": "loop", "step": step, "kind": step % 3, "user": thread.split()[0],
            "tags": {"ns": ns, "odd": bool(step % 2)}, "parents": {},
        }  # fmt: skip
        config = {
            "configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": head["id"]}
        }
        stored = target.put(config, checkpoint, metadata, {"messages": version, "step": version})
        if step % 2 == 0:
            target.put_writes(stored, [("messages", [AIMessage(content=f"w{n}")])], f"t{n}", "~a")
            target.put_writes(stored, [("__interrupt__", {"ask": n})], f"t{n}", "~a")
        heads[(thread, ns)] = {
            "messages": messages,
            "version": head["version"] + 1,
            "id": checkpoint_id,
        }
        ids.setdefault(f"{thread}/{ns}", []).append(checkpoint_id)
    return ids


def view(tuples: list[CheckpointTuple]) -> list[Any]:
    return [
        (t.config, t.parent_config, t.metadata, t.checkpoint["channel_values"], t.pending_writes)
        for t in tuples
    ]


@pytest.fixture
def pair(
    saver: RedisCheckpointer,
) -> tuple[RedisCheckpointer, MemoryCheckpointer, dict[str, list[str]]]:
    memory = MemoryCheckpointer()
    ids = put_history(saver)
    assert put_history(memory) == ids
    return saver, memory, ids


def cfg(thread: str, **conf: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **conf}}


def queries(ids: dict[str, list[str]]) -> list[tuple[Any, dict[str, Any]]]:
    root, sub = ids["alpha/"], ids["alpha/sub:1"]
    out: list[tuple[Any, dict[str, Any]]] = []
    configs = [
        cfg("alpha"),  # every namespace
        cfg("alpha", checkpoint_ns=""),  # the root namespace only
        cfg("alpha", checkpoint_ns="sub:1"),
        cfg("alpha", checkpoint_ns="sub:1|inner:2"),
        cfg("gamma {x}", checkpoint_ns=""),
        cfg("alpha", checkpoint_id=root[2]),
        cfg("alpha", checkpoint_ns="", checkpoint_id=root[2]),
        cfg("alpha", checkpoint_ns="sub:1", checkpoint_id=root[2]),
        cfg("nobody"),
        None,
    ]
    befores = [None, cfg("alpha", checkpoint_id=root[3]), cfg("x", checkpoint_id=sub[1])]
    befores.append(cfg("alpha", checkpoint_id=root[0]))
    filters = [None, {"kind": 1}, {"user": "beta"}, {"tags": {"ns": "sub:1", "odd": True}}]
    filters.append({"kind": 0, "step": 3})
    for config, before, limit, wanted in itertools.product(
        configs, befores, [None, 0, 1, 4], filters
    ):
        out.append((config, {"before": before, "limit": limit, "filter": wanted}))
    return out


def test_list_matches_memory_checkpointer(
    pair: tuple[RedisCheckpointer, MemoryCheckpointer, dict[str, list[str]]],
) -> None:
    saver, memory, ids = pair
    checked = 0
    for config, options in queries(ids):
        expected = view(list(memory.list(config, **options)))
        assert view(list(saver.list(config, **options))) == expected, (config, options)
        checked += bool(expected)
    assert checked > 100
    # Small pages: the same answers when paging through the history.
    saver._page = 2
    for config, options in queries(ids)[::7]:
        assert view(list(saver.list(config, **options))) == view(
            list(memory.list(config, **options))
        )


def test_get_tuple_threads_and_history_match(
    pair: tuple[RedisCheckpointer, MemoryCheckpointer, dict[str, list[str]]],
) -> None:
    saver, memory, ids = pair
    for key, checkpoint_ids in ids.items():
        thread, _, ns = key.partition("/")
        for checkpoint_id in [None, *checkpoint_ids]:
            config = cfg(thread, checkpoint_ns=ns, checkpoint_id=checkpoint_id)
            assert view([saver.get_tuple(config)]) == view([memory.get_tuple(config)])  # type: ignore[list-item]
            assert saver.get_delta_channel_history(
                config=config, channels=["messages", "step"]
            ) == memory.get_delta_channel_history(config=config, channels=["messages", "step"])
    assert saver.list_threads() == memory.list_threads()
    assert saver.list_threads(filter={"user": "beta"}, limit=1) == memory.list_threads(
        filter={"user": "beta"}, limit=1
    )


HOSTILE = [
    "x') OR 1=1 --",
    "u1' OR '1'='1",
    '"]] redis.call("FLUSHALL") --',
    "'); redis.call('DEL', KEYS[1]); --",
    "*",
    "n\\x00[",
    "]]..KEYS[1]..[[",
    "{alpha}",
]


def test_hostile_filters_match_nothing_and_change_nothing(
    pair: tuple[RedisCheckpointer, MemoryCheckpointer, dict[str, list[str]]],
    raw: Any,
    redis_prefix: str,
) -> None:
    saver, _, _ = pair
    before = snapshot(raw, redis_prefix)
    for text in HOSTILE:
        for wanted in ({text: "alpha"}, {"user": text}, {"tags": {text: text}}, {"user": [text]}):
            assert list(saver.list(cfg("alpha"), filter=wanted)) == []
            assert list(saver.list(None, filter=wanted)) == []
            assert saver.list_threads(filter=wanted) == []
        # Hostile thread ids and namespaces are just names.
        assert saver.get_tuple(cfg(text)) is None
        assert list(saver.list(cfg("alpha", checkpoint_ns=text))) == []
        assert len(list(saver.list(cfg("alpha", checkpoint_id=text)))) == 0
    assert snapshot(raw, redis_prefix) == before
    assert len(list(saver.list(cfg("alpha"), filter={"user": "alpha"}))) == 13


def test_writes_of_one_call_apply_in_order_like_memory(saver: RedisCheckpointer) -> None:
    """Within one call too: the first ordinary write of a (task, idx) wins, the last special."""
    memory = MemoryCheckpointer()
    checkpoint = {
        "v": 4, "id": CHECKPOINT_IDS[0], "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {}, "channel_versions": {}, "versions_seen": {}, "updated_channels": [],
    }  # fmt: skip
    calls = [
        ("task", [(INTERRUPT, "first ask"), ("c", "x"), (INTERRUPT, "second ask"), ("c", "y")]),
        ("other", [(ERROR, "boom"), (ERROR, "boom again")]),
        ("task", [("c", "late"), (INTERRUPT, "third ask")]),  # merged with the first call
    ]
    for target in (saver, memory):
        head = target.put(cfg("w", checkpoint_ns=""), checkpoint, {}, {})
        for task, writes in calls:
            target.put_writes(head, writes, task, "~p")
    got, expected = saver.get_tuple(cfg("w")), memory.get_tuple(cfg("w"))
    assert got is not None
    assert expected is not None
    assert got.pending_writes == expected.pending_writes
    assert {w[2] for w in got.pending_writes} == {"third ask", "x", "y", "late", "boom again"}
