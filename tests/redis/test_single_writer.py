"""The single-writer guard on Redis: decided in the PUT script, as the memory checkpointer decides.

The contract suite (`tests/contract/test_single_writer.py`) checks the rule on
every backend; here: that the script's decision, made on escaped ids with the
index's byte order, matches the core's `check_single_writer` on any sequence
of puts (namespaces and ids that escaping changes included), and that it is
atomic: of many writers racing on one parent, exactly one wins, on a plain
server and on a cluster.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
from checkpointkit.errors import WriteConflictError
from tests.redis.test_cluster import redis_cluster_prefix  # noqa: F401 - a fixture

# Namespaces one of which prefixes another, with the byte escaping changes (\x01).
SPACES = ["", "p", "p\x01q", "p|c:1"]
IDS = [f"1ef{n:03d}" for n in range(40)] + ["1ef010\x01", "1ef010\x01\x03", "1ef0105"]


def put(saver: Any, thread: str, ns: str, parent: str | None, checkpoint_id: str) -> str:
    """Put a checkpoint; return "ok", or what the guard's error names."""
    cfg = {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": parent}}
    cp = {
        "v": 4, "id": checkpoint_id, "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"n": checkpoint_id}, "channel_versions": {"n": f"{checkpoint_id}.1"},
        "versions_seen": {}, "updated_channels": ["n"],
    }  # fmt: skip
    try:
        saver.put(cfg, cp, {"step": 1}, {"n": f"{checkpoint_id}.1"})
    except WriteConflictError as exc:
        return f"refused: {(exc.thread_id, exc.checkpoint_ns, exc.parent_id, exc.newest_id)!r}"
    return "ok"


def test_the_script_decides_like_check_single_writer(redis_url: str, redis_prefix: str) -> None:
    memory = MemoryCheckpointer(single_writer=True)
    rng = random.Random(7)
    outcomes: list[str] = []
    with RedisCheckpointer.from_conn_string(
        redis_url, prefix=redis_prefix, single_writer=True
    ) as saver:
        for _ in range(400):
            ns = rng.choice(SPACES)
            newest = memory.get_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ns}})
            parent = rng.choice([None, *IDS])
            if newest is not None and rng.random() < 0.5:  # a writer that is up to date
                parent = newest.config["configurable"]["checkpoint_id"]
            checkpoint_id = rng.choice(IDS)
            expected = put(memory, "t", ns, parent, checkpoint_id)
            assert put(saver, "t", ns, parent, checkpoint_id) == expected, (ns, parent)
            outcomes.append(expected)
        for ns in SPACES:
            cfg = {"configurable": {"thread_id": "t", "checkpoint_ns": ns}}
            assert [t.config for t in saver.list(cfg)] == [t.config for t in memory.list(cfg)]
    refused = sum(o != "ok" for o in outcomes)
    assert 100 < refused < 300  # both outcomes well exercised


RACE = {"configurable": {"thread_id": "race"}}


async def race(saver: AsyncRedisCheckpointer, writers: int) -> list[BaseException | None]:
    """Put a root checkpoint, then `writers` children of it at once; return each outcome."""
    thread = "race"
    base = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}

    def checkpoint(n: int) -> dict[str, Any]:
        return {
            "v": 4, "id": f"1ef{n:04d}", "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {"n": n}, "channel_versions": {"n": f"{n:032}.1"},
            "versions_seen": {}, "updated_channels": ["n"],
        }  # fmt: skip

    root = await saver.aput(base, checkpoint(0), {"step": 0}, {"n": f"{0:032}.1"})
    results = await asyncio.gather(
        *(
            saver.aput(root, checkpoint(n), {"step": 1}, {"n": f"{n:032}.1"})
            for n in range(1, writers + 1)
        ),
        return_exceptions=True,
    )
    return [r if isinstance(r, BaseException) else None for r in results]


def check_race(outcomes: list[BaseException | None], stored: list[Any]) -> None:
    winners = [o for o in outcomes if o is None]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, WriteConflictError) for o in outcomes if o is not None)
    assert len(stored) == 2  # the root and the one winner


@pytest.mark.parametrize("writers", [2, 20])
async def test_racing_writers_on_one_parent_exactly_one_wins(
    redis_url: str, redis_prefix: str, writers: int
) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(
        redis_url, prefix=redis_prefix, single_writer=True
    ) as saver:
        outcomes = await race(saver, writers)
        check_race(outcomes, [t async for t in saver.alist(RACE)])


async def test_racing_writers_on_a_cluster(
    redis_cluster: Any,
    redis_cluster_prefix: str,  # noqa: F811 - the fixture imported above
) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(
        redis_cluster.uri, prefix=redis_cluster_prefix, single_writer=True
    ) as saver:
        outcomes = await race(saver, 20)
        check_race(outcomes, [t async for t in saver.alist(RACE)])


async def test_without_the_guard_racing_writers_all_store(
    redis_url: str, redis_prefix: str
) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as saver:
        outcomes = await race(saver, 20)
        assert outcomes == [None] * 20
