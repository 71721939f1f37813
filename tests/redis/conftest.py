"""Fixtures of the Redis checkpointer tests: savers on the harness's servers, graphs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import redis
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from checkpointkit.checkpointers.redis import RedisCheckpointer


@pytest.fixture
def saver(redis_url: str, redis_prefix: str) -> Iterator[RedisCheckpointer]:
    """A sync Redis checkpointer under the test's prefix."""
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as made:
        yield made


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the shared server, to look at the keys."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def keys_under(client: Any, prefix: str) -> set[bytes]:
    """Every key under `prefix` (SCAN, as the harness cleans up)."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
    return set(client.scan_iter(match=escaped + "*", count=1000))


def snapshot(client: Any, prefix: str) -> dict[bytes, Any]:
    """The content of every key under `prefix`, comparable across calls."""
    out: dict[bytes, Any] = {}
    for key in keys_under(client, prefix):
        kind = client.type(key)
        if kind == b"hash":
            out[key] = client.hgetall(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = (kind, client.dump(key))
    return out


class Chat(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]


def chat_graph(saver: BaseCheckpointSaver[Any], reply_chars: int = 500) -> Any:
    """START -> model -> END; the model answers each human message."""

    def model(state: Chat) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=(f"reply {n} " + "a" * reply_chars)[:reply_chars])]}

    builder = StateGraph(Chat)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=saver)


def human(turn: int, chars: int = 200) -> HumanMessage:
    return HumanMessage(content=(f"turn {turn} " + "h" * chars)[:chars])
