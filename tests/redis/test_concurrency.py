"""Many writers at once: 100 concurrent async tasks, threads shared between tasks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base.id import uuid6

from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
from tests.redis.conftest import chat_graph, human

TASKS = 100
STEPS = 6


async def run_task(saver: AsyncRedisCheckpointer, task: int) -> list[tuple[dict[str, Any], Any]]:
    """Put a chain of checkpoints with growing messages; return (config, values) per put."""
    thread = f"t{task % 25}"  # four tasks per thread...
    ns = "" if task < 25 else f"sub:{task}"  # ...each in its own namespace
    messages: list[Any] = []
    parent = None
    done = []
    for step in range(STEPS):
        messages = [*messages, HumanMessage(content=f"{task}.{step}", id=f"h{task}.{step}")]
        if step % 3 == 2:  # an edit in the middle, not an append
            messages = [*messages[:1], AIMessage(content=f"edit {step}", id="e"), *messages[2:]]
        v = f"{step + 1:032}.{task / 1000:016}"
        checkpoint = {
            "v": 4, "id": str(uuid6(clock_seq=task * STEPS + step)), "ts": "2026-01-01",
            "channel_values": {"messages": messages, "step": step},
            "channel_versions": {"messages": v, "step": v},
            "versions_seen": {}, "updated_channels": ["messages", "step"],
        }  # fmt: skip
        config = {
            "configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": parent}
        }
        stored = await saver.aput(
            config, checkpoint, {"task": task, "step": step}, {"messages": v, "step": v}
        )
        await saver.aput_writes(stored, [("messages", [f"w{task}.{step}"])], f"task{task}")
        parent = stored["configurable"]["checkpoint_id"]
        done.append((stored, {"messages": list(messages), "step": step}))
        await asyncio.sleep(0)
    return done


async def test_hundred_concurrent_tasks_every_checkpoint_reads_back(
    redis_url: str, redis_prefix: str
) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as saver:
        results = await asyncio.gather(*(run_task(saver, task) for task in range(TASKS)))
        stored = [item for result in results for item in result]
        assert len(stored) == TASKS * STEPS
        reads = await asyncio.gather(*(saver.aget_tuple(config) for config, _ in stored))
        for (config, values), tup in zip(stored, reads, strict=True):
            assert tup is not None, config
            assert tup.checkpoint["channel_values"] == values
            assert tup.config == config
            assert [w[2] for w in tup.pending_writes] == [
                [f"w{tup.metadata['task']}.{values['step']}"]
            ]
        # Read back cold, by a fresh saver with nothing cached, and by listing.
    async with AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as cold:
        for config, values in stored[::7]:
            tup = await cold.aget_tuple(config)
            assert tup is not None
            assert tup.checkpoint["channel_values"] == values
        for n in range(25):
            listed = [t async for t in cold.alist({"configurable": {"thread_id": f"t{n}"}})]
            assert len(listed) == 4 * STEPS
        assert len(await cold.alist_threads()) == 25


async def test_concurrent_graph_runs(redis_url: str, redis_prefix: str) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as saver:
        graph = chat_graph(saver, reply_chars=30)

        async def chat(n: int) -> None:
            cfg = {"configurable": {"thread_id": f"chat{n}"}}
            for turn in range(3):
                await graph.ainvoke({"messages": [human(turn, 20)]}, cfg)

        await asyncio.gather(*(chat(n) for n in range(30)))
        for n in range(30):
            state = await graph.aget_state({"configurable": {"thread_id": f"chat{n}"}})
            assert len(state.values["messages"]) == 6


def test_sync_saver_shared_by_threads(saver: RedisCheckpointer) -> None:
    graph = chat_graph(saver, reply_chars=30)
    errors: list[BaseException] = []

    def chat(n: int) -> None:
        try:
            cfg = {"configurable": {"thread_id": f"sync{n % 4}"}}
            for turn in range(3):
                graph.invoke({"messages": [human(turn, 20)]}, cfg)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=chat, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    for n in range(4):
        history = list(graph.get_state_history({"configurable": {"thread_id": f"sync{n}"}}))
        assert len(history) == 2 * 3 * 3
        for snap in history:
            saver.get_tuple(snap.config)
