"""Redis Cluster: one slot per thread, the threads index spread over the masters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
from checkpointkit.checkpointers.redis._common import close_node_pools
from tests.backends.redis import cluster_prefix
from tests.redis.conftest import chat_graph, human


@pytest.fixture
def redis_cluster_prefix(redis_cluster: Any) -> Iterator[str]:
    """A fresh prefix on the cluster, cleaned up without leaking sockets (see there)."""
    with cluster_prefix(redis_cluster.uri) as prefix:
        yield prefix


@pytest.fixture
def cluster_client(redis_cluster: Any) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(redis_cluster.uri)
    try:
        yield client
    finally:
        client.close()
        close_node_pools(client)  # from_url clients leave them open


def cluster_keys(client: RedisCluster, prefix: str) -> set[bytes]:
    return set(
        client.scan_iter(match=prefix + "*", count=1000, target_nodes=RedisCluster.PRIMARIES)
    )


def test_threads_spread_and_each_stays_in_one_slot(
    redis_cluster: Any, redis_cluster_prefix: str, cluster_client: RedisCluster
) -> None:
    # cluster=None: the checkpointer asks the server and picks the cluster client.
    # A TTL the writes below fit in even on a busy machine; expiry is awaited.
    with RedisCheckpointer.from_conn_string(
        redis_cluster.uri, prefix=redis_cluster_prefix, ttl=4
    ) as saver:
        assert isinstance(saver._client, RedisCluster)
        graph = chat_graph(saver, reply_chars=10)
        threads = [f"c{n}" for n in range(24)]
        for thread in threads:
            graph.invoke({"messages": [human(0, 10)]}, {"configurable": {"thread_id": thread}})
        keys = cluster_keys(cluster_client, redis_cluster_prefix)
        for thread in threads:
            mine = [k for k in keys if f"{{{thread}}}".encode() in k]
            assert len(mine) == 4
            assert len({cluster_client.keyslot(k) for k in mine}) == 1
        masters = {cluster_client.get_node_from_key(k).name for k in keys if b"threads:" in k}
        assert len(masters) >= 2  # the index lives on several nodes
        assert sorted(t.thread_id for t in saver.list_threads()) == sorted(threads)
        assert len(list(saver.list(None, limit=30))) == 30
        # Expiry and lazy cleanup work across nodes too.
        deadline = time.monotonic() + 30
        while any(b"threads:" not in k for k in cluster_keys(cluster_client, redis_cluster_prefix)):
            assert time.monotonic() < deadline, "thread keys did not expire"
            time.sleep(0.2)
        assert saver.list_threads() == []
        assert cluster_keys(cluster_client, redis_cluster_prefix) == set()


async def test_async_saver_on_the_cluster(redis_cluster: Any, redis_cluster_prefix: str) -> None:
    async with AsyncRedisCheckpointer.from_conn_string(
        redis_cluster.uri, prefix=redis_cluster_prefix
    ) as saver:
        graph = chat_graph(saver, reply_chars=10)
        for n in range(6):
            await graph.ainvoke(
                {"messages": [human(n, 10)]},
                {"configurable": {"thread_id": f"a{n % 3}"}},
            )
        threads = await saver.alist_threads()
        assert sorted(t.thread_id for t in threads) == ["a0", "a1", "a2"]
        assert all(t.checkpoint_count == 6 for t in threads)
        listed = [t async for t in saver.alist(None)]
        ids = [t.config["configurable"]["checkpoint_id"] for t in listed]
        assert ids == sorted(ids, reverse=True)
        assert len(ids) == 18
        await saver.adelete_thread("a1")
        assert len([t async for t in saver.alist(None)]) == 12
