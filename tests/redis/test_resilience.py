"""Restarts and outages: typed errors, retries, nothing acknowledged lost with AOF."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
import redis
from langgraph.graph import END, START, StateGraph
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from typing_extensions import TypedDict

from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
from checkpointkit.errors import BackendUnavailableError
from tests.redis.conftest import chat_graph, human

# Fail fast while the server is down (the default client retries for seconds).
FAST = {"retry": Retry(NoBackoff(), 1), "socket_connect_timeout": 1, "socket_timeout": 2}
AFAST = {**FAST, "retry": AsyncRetry(NoBackoff(), 1)}


class Counter(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


def counting_graph(saver: Any, on_step: Any) -> Any:
    """Loops `work` until count reaches 12, calling `on_step(count)` in each step."""

    def work(state: Counter) -> dict[str, Any]:
        on_step(state["count"])
        return {"count": state["count"] + 1, "log": [f"step {state['count']}"]}

    builder = StateGraph(Counter)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_conditional_edges("work", lambda s: END if s["count"] >= 12 else "work")
    return builder.compile(checkpointer=saver)


def test_restart_with_aof_mid_run_resumes_from_last_checkpoint(redis_factory: Any) -> None:
    server = redis_factory(appendonly=True)
    cfg = {"configurable": {"thread_id": "run"}}
    acknowledged: list[str] = []
    with RedisCheckpointer.from_conn_string(server.uri, prefix="aof:", **FAST) as saver:

        def on_step(count: int) -> None:
            if count == 6 and not acknowledged:
                acknowledged.extend(
                    t.config["configurable"]["checkpoint_id"] for t in saver.list(cfg)
                )
                server.kill()  # SIGKILL, as in a crash

        graph = counting_graph(saver, on_step)
        with pytest.raises(BackendUnavailableError) as caught:
            # durability="sync": each step's checkpoint is stored before the next step.
            graph.invoke({"count": 0, "log": []}, cfg, durability="sync")
        assert isinstance(caught.value.__cause__, redis.RedisError)
        assert len(acknowledged) == 8  # the input, __start__, then counts 1..6
        server.start()  # same port, AOF replayed
        stored = [t.config["configurable"]["checkpoint_id"] for t in saver.list(cfg)]
        assert stored == acknowledged
        state = graph.get_state(cfg)
        assert state.values["count"] == 6
        assert state.next == ("work",)
        # Resume: the interrupted step runs again from the last checkpoint.
        final = graph.invoke(None, cfg, durability="sync")
        assert final["count"] == 12
        assert final["log"] == [f"step {i}" for i in range(12)]
        assert [t.thread_id for t in saver.list_threads()] == ["run"]


def test_quick_restart_is_ridden_out_by_retries(redis_factory: Any) -> None:
    server = redis_factory(appendonly=True)
    cfg = {"configurable": {"thread_id": "blip"}}
    # redis-py's default policy retries with backoff for a few seconds: every script
    # is idempotent (a put is keyed by its checkpoint id), so retrying is safe.
    with RedisCheckpointer.from_conn_string(server.uri, prefix="blip:") as saver:

        def on_step(count: int) -> None:
            if count in (3, 8):
                server.kill()
                server.start()

        final = counting_graph(saver, on_step).invoke({"count": 0, "log": []}, cfg)
        assert final["count"] == 12
        assert len(list(saver.list(cfg))) == 14


def test_scripts_reload_after_script_flush(saver: RedisCheckpointer, raw: Any) -> None:
    graph = chat_graph(saver, reply_chars=10)
    cfg = {"configurable": {"thread_id": "flushed"}}
    graph.invoke({"messages": [human(0, 10)]}, cfg)
    raw.script_flush()  # as after a restart or a failover: EVALSHA answers NOSCRIPT
    graph.invoke({"messages": [human(1, 10)]}, cfg)
    assert len(graph.get_state(cfg).values["messages"]) == 4
    raw.script_flush()
    assert len(saver.list_threads()) == 1  # pipelined scripts fall back too
    raw.script_flush()
    assert len(list(saver.list(None))) == len(list(saver.list(cfg)))


def test_unreachable_server_is_a_typed_error(redis_factory: Any) -> None:
    server = redis_factory()
    url = server.uri
    with RedisCheckpointer.from_conn_string(url, prefix="down:", **FAST) as saver:
        cfg = {"configurable": {"thread_id": "t"}}
        chat_graph(saver, reply_chars=10).invoke({"messages": [human(0, 10)]}, cfg)
        server.kill()
        for call in (
            lambda: saver.get_tuple(cfg),
            lambda: list(saver.list(cfg)),
            lambda: saver.list_threads(),
            lambda: saver.delete_thread("t"),
        ):
            with pytest.raises(BackendUnavailableError, match="unreachable"):
                call()
    with (
        pytest.raises(BackendUnavailableError),
        RedisCheckpointer.from_conn_string(url, prefix="down:", **FAST),
    ):
        pass


async def test_async_saver_typed_error_and_recovery(redis_factory: Any) -> None:
    server = redis_factory(appendonly=True)
    cfg = {"configurable": {"thread_id": "a"}}
    async with AsyncRedisCheckpointer.from_conn_string(
        server.uri, prefix="adown:", **AFAST
    ) as saver:
        graph = chat_graph(saver, reply_chars=10)
        await graph.ainvoke({"messages": [human(0, 10)]}, cfg)
        server.kill()
        with pytest.raises(BackendUnavailableError):
            await saver.aget_tuple(cfg)
        server.start()
        await graph.ainvoke({"messages": [human(1, 10)]}, cfg)
        assert len((await graph.aget_state(cfg)).values["messages"]) == 4


def test_refused_credentials_are_a_typed_error(redis_factory: Any) -> None:
    server = redis_factory()
    server.command("CONFIG", "SET", "requirepass", "s3cret")
    wrong = server.uri.replace("redis://", "redis://:wrong@")
    with (
        pytest.raises(BackendUnavailableError, match="credentials"),
        RedisCheckpointer.from_conn_string(wrong, prefix="auth:", **FAST),
    ):
        pass
    right = server.uri.replace("redis://", "redis://:s3cret@")
    with RedisCheckpointer.from_conn_string(right, prefix="auth:") as saver:
        assert saver.list_threads() == []
