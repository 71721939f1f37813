"""Redis Cluster: one slot per thread, the threads index spread over the masters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer, RedisCheckpointer
from checkpointkit.checkpointers.redis._common import close_node_pools
from tests.backends.redis import cluster_prefix
from tests.contract.helpers import checkpoint, config
from tests.redis.conftest import chat_graph, human
from tests.redis.test_thread_index import build, listed


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


def test_a_listing_does_not_unindex_a_thread_recreated_since(
    redis_cluster: Any, redis_cluster_prefix: str, cluster_client: RedisCluster
) -> None:
    with RedisCheckpointer.from_conn_string(
        redis_cluster.uri, prefix=redis_cluster_prefix
    ) as saver:
        saver.put(config("racer"), checkpoint({"n": 1}, {"n": "1"}), {}, {"n": "1"})
        bucket = saver._layout.bucket("racer")
        score = cluster_client.zscore(bucket, "racer")
        # The thread's keys vanish (expiry); a listing sees it gone; before its
        # cleanup, a put re-creates it with an older time, which alone would
        # leave the score as it was.
        cluster_client.delete(*saver._layout.thread_keys("racer"))
        old = checkpoint({"n": 2}, {"n": "2"})
        old["ts"] = "2020-01-01T00:00:00+00:00"
        old["id"] = "1ea2c47a-0000-6000-8000-000000000000"  # a 2020 uuid6
        saver.put(config("racer"), old, {}, {"n": "2"})
        assert cluster_client.zscore(bucket, "racer") != score
        saver._unindex("racer", bucket, score)
        assert [t.thread_id for t in saver.list_threads()] == ["racer"]
        # With the score it has now, and the keys gone, the entry goes.
        cluster_client.delete(*saver._layout.thread_keys("racer"))
        saver._unindex("racer", bucket, cluster_client.zscore(bucket, "racer"))
        assert cluster_client.zscore(bucket, "racer") is None


def test_limited_listings_on_the_cluster_match_memory(
    redis_cluster: Any, redis_cluster_prefix: str
) -> None:
    memory = MemoryCheckpointer()
    with RedisCheckpointer.from_conn_string(
        redis_cluster.uri, prefix=redis_cluster_prefix
    ) as saver:
        build([saver, memory], threads=24)
        everything = memory.list_threads()
        for limit in (1, 2, 7, len(everything), None):
            assert saver.list_threads(limit=limit) == everything[:limit]
        checkpoints = listed(memory.list(None))
        for limit in (1, 3, 10, None):
            assert listed(saver.list(None, limit=limit)) == checkpoints[:limit]
