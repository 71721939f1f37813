"""The Redis checkpointers' API: construction, key layout, loops, the missing extra."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st

from checkpointkit.checkpointers.redis import (
    DEFAULT_PREFIX,
    AsyncRedisCheckpointer,
    RedisCheckpointer,
)
from checkpointkit.checkpointers.redis._keys import (
    Layout,
    blob_field,
    escape,
    parse_blob_field,
    parse_row_field,
    row_field,
    unescape,
)
from checkpointkit.errors import ConfigurationError, MissingDependencyError
from tests.backends.redis import background_loop
from tests.redis.conftest import chat_graph, human, keys_under

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@given(texts)
def test_escape_round_trips_and_removes_nul(part: str) -> None:
    assert "\x00" not in escape(part)
    assert unescape(escape(part)) == part


@given(texts, texts, texts)
def test_fields_parse_back(ns: str, channel: str, version: str) -> None:
    assert parse_row_field(row_field(ns, channel)) == (ns, channel)
    assert parse_blob_field(blob_field(ns, channel, version)) == (ns, channel, version)


@given(texts)
def test_a_thread_keeps_one_hash_tag(thread: str) -> None:
    from redis.crc import key_slot

    keys = Layout("app:").thread_keys(thread)
    assert len({key_slot(k.encode("utf-8", "surrogatepass")) for k in keys}) == 1
    assert all(k.startswith("app:{") for k in keys)


def test_layout_rejects_brace_prefixes() -> None:
    with pytest.raises(ConfigurationError, match="hash tag"):
        Layout("a{b")
    assert Layout().prefix == DEFAULT_PREFIX


def test_construction_from_client_pool_and_checks(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pool = redis.ConnectionPool.from_url(redis_url)
    try:
        for source in (client, pool):
            saver = RedisCheckpointer(source, prefix=redis_prefix)
            chat_graph(saver, reply_chars=5).invoke(
                {"messages": [human(0, 5)]}, {"configurable": {"thread_id": "made"}}
            )
            assert saver.prefix == redis_prefix
        with pytest.raises(ConfigurationError, match="decode_responses"):
            RedisCheckpointer(redis.Redis.from_url(redis_url, decode_responses=True))
        with (
            pytest.raises(ConfigurationError, match="decode_responses"),
            RedisCheckpointer.from_conn_string(redis_url, decode_responses=True),
        ):
            pass
        with pytest.raises(ConfigurationError, match=r"redis\.asyncio"):
            RedisCheckpointer(redis.asyncio.Redis.from_url(redis_url))  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            AsyncRedisCheckpointer(client)  # type: ignore[arg-type]
    finally:
        client.close()
        pool.disconnect()


def test_delete_thread_removes_every_key(
    saver: RedisCheckpointer, raw: Any, redis_prefix: str
) -> None:
    graph = chat_graph(saver, reply_chars=5)
    for thread in ("keep", "drop"):
        graph.invoke({"messages": [human(0, 5)]}, {"configurable": {"thread_id": thread}})
    saver.delete_thread("drop")
    assert not [k for k in keys_under(raw, redis_prefix) if b"drop" in k]
    assert [t.thread_id for t in saver.list_threads()] == ["keep"]
    saver.prune(["keep"], strategy="delete")
    assert keys_under(raw, redis_prefix) == set()


def test_unusual_thread_ids_and_namespaces(saver: RedisCheckpointer) -> None:
    graph = chat_graph(saver, reply_chars=5)
    # NUL is refused by the core for every backend; \x01 is what the key layout escapes.
    odd = ["a{b}c", "}{", "%7B", "t:1:c", "emoji 🧵", "x\x01y", "x\x01\x02y"]
    for thread in odd:
        graph.invoke({"messages": [human(0, 5)]}, {"configurable": {"thread_id": thread}})
    assert sorted(t.thread_id for t in saver.list_threads()) == sorted(odd)
    for thread in odd:
        state = graph.get_state({"configurable": {"thread_id": thread}})
        assert len(state.values["messages"]) == 2


def test_async_saver_serves_sync_calls_from_other_threads(
    redis_url: str, redis_prefix: str
) -> None:
    with background_loop() as loop:

        async def make() -> Any:
            manager = AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix)
            return manager, await manager.__aenter__()

        manager, saver = loop.run(make())
        try:
            graph = chat_graph(saver, reply_chars=5)
            cfg = {"configurable": {"thread_id": "bridged"}}
            graph.invoke({"messages": [human(0, 5)]}, cfg)  # sync calls, bridged
            assert len(graph.get_state(cfg).values["messages"]) == 2
            assert saver.storage_bytes("bridged") > 0
            assert saver.memory_usage("bridged") > 0
            # From its own loop's thread, a sync call would deadlock: a clear error.
            with pytest.raises(ConfigurationError, match="deadlock"):
                loop.run(_sync_call_on_loop(saver, cfg))
        finally:
            loop.run(manager.__aexit__(None, None, None))


async def _sync_call_on_loop(saver: Any, cfg: Any) -> Any:
    return saver.get_tuple(cfg)


async def test_async_saver_awaited_from_another_loop(redis_url: str, redis_prefix: str) -> None:
    with background_loop() as loop:

        async def make() -> Any:
            manager = AsyncRedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix)
            return manager, await manager.__aenter__()

        manager, saver = loop.run(make())
        try:
            graph = chat_graph(saver, reply_chars=5)
            cfg = {"configurable": {"thread_id": "elsewhere"}}
            for turn in range(3):
                await graph.ainvoke({"messages": [human(turn, 5)]}, cfg)
            # An async iterator from the other loop, left early, is closed there.
            async for tup in saver.alist(cfg):
                assert tup.checkpoint["channel_values"]["messages"]
                break
            history = [s async for s in graph.aget_state_history(cfg)]
            assert len(history) == 9
            assert await saver.astorage_bytes() == await saver.astorage_bytes("elsewhere")
        finally:
            loop.run(manager.__aexit__(None, None, None))


async def test_async_saver_on_its_own_loop(redis_url: str, redis_prefix: str) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(redis_url)
    try:
        saver = AsyncRedisCheckpointer(pool, prefix=redis_prefix, page_size=2)
        graph = chat_graph(saver, reply_chars=5)
        cfg = {"configurable": {"thread_id": "own"}}
        await asyncio.gather(*(graph.ainvoke({"messages": [human(0, 5)]}, cfg) for _ in range(1)))
        await graph.ainvoke({"messages": [human(1, 5)]}, cfg)
        assert len([s async for s in graph.aget_state_history(cfg)]) == 6
        # A sync call from another thread while the loop runs is bridged to it.
        tup = await asyncio.to_thread(saver.get_tuple, cfg)
        assert tup is not None
        assert tup.config["configurable"]["thread_id"] == "own"
    finally:
        await pool.aclose()


def test_missing_redis_package_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "try:\n"
        "    import checkpointkit.checkpointers.redis\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(MissingDependencyError.__name__)
    assert "pip install 'checkpointkit[redis]'" in out


def test_single_connection_clients_work(redis_url: str, redis_prefix: str) -> None:
    # redis-py's client locks its one connection around each command.
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    try:
        saver = RedisCheckpointer(client, prefix=redis_prefix)
        graph = chat_graph(saver, reply_chars=5)
        cfg = {"configurable": {"thread_id": "single"}}
        graph.invoke({"messages": [human(0, 5)]}, cfg)
        assert len(graph.get_state(cfg).values["messages"]) == 2
    finally:
        client.close()


async def test_async_single_connection_clients_work(redis_url: str, redis_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, single_connection_client=True)
    try:
        saver = AsyncRedisCheckpointer(client, prefix=redis_prefix)
        graph = chat_graph(saver, reply_chars=5)
        cfg = {"configurable": {"thread_id": "single"}}
        await graph.ainvoke({"messages": [human(0, 5)]}, cfg)
        assert len((await graph.aget_state(cfg)).values["messages"]) == 2
    finally:
        await client.aclose()
