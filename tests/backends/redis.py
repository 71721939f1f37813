"""The Redis checkpointers for the contract suite: both classes, on Redis and Redis Cluster.

Each factory yields a saver under the test's own key prefix (its keys are
deleted afterwards). The async class runs on an event loop of its own, in a
background thread, as an application serving both sync and async callers
would run it: sync calls go through its bridge, and coroutine calls from the
test's loop are forwarded to its loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from tests.backends._loop import BackgroundLoop, background_loop
from tests.contract.backends import SaverFactory, saver_options


@contextmanager
def async_saver_on(
    loop: BackgroundLoop, url: str, **options: Any
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Yield an `AsyncRedisCheckpointer` living on `loop` (entered and exited there)."""
    from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer

    manager = AsyncRedisCheckpointer.from_conn_string(url, **options)
    saver = loop.run(manager.__aenter__())
    try:
        yield saver
    finally:
        loop.run(manager.__aexit__(None, None, None))


@contextmanager
def cluster_prefix(url: str) -> Iterator[str]:
    """Yield a fresh key prefix on a Redis cluster; delete its keys afterwards.

    Like the harness's ``redis_cluster_prefix``, whose cleanup client leaves
    sockets open (redis-py's ``RedisCluster.close()`` does not disconnect the
    node pools of a ``from_url`` client): they are closed later by the garbage
    collector, and the ResourceWarning fails whichever test is running then.
    """
    from redis.cluster import RedisCluster

    from checkpointkit.checkpointers.redis._common import close_node_pools
    from tests.harness.isolation import new_redis_prefix

    prefix = new_redis_prefix()
    try:
        yield prefix
    finally:
        client = RedisCluster.from_url(url)
        try:
            doomed = list(
                client.scan_iter(
                    match=prefix + "*", count=1000, target_nodes=RedisCluster.PRIMARIES
                )
            )
            for key in doomed:  # one by one: the keys live in different slots
                client.unlink(key)
        finally:
            client.close()
            close_node_pools(client)


@contextmanager
def _server(request: pytest.FixtureRequest, cluster: bool) -> Iterator[tuple[str, str]]:
    if cluster:
        url = request.getfixturevalue("redis_cluster").uri
        with cluster_prefix(url) as prefix:
            yield url, prefix
    else:
        yield request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


def _sync_factory(cluster: bool) -> SaverFactory:
    @contextmanager
    def factory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
        from checkpointkit.checkpointers.redis import RedisCheckpointer

        with (
            _server(request, cluster) as (url, prefix),
            RedisCheckpointer.from_conn_string(
                url, prefix=prefix, cluster=cluster, **saver_options(request)
            ) as saver,
        ):
            yield saver

    return factory


def _async_factory(cluster: bool) -> SaverFactory:
    @contextmanager
    def factory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
        with (
            _server(request, cluster) as (url, prefix),
            background_loop() as loop,
            async_saver_on(
                loop, url, prefix=prefix, cluster=cluster, **saver_options(request)
            ) as saver,
        ):
            yield saver

    return factory


FACTORIES: dict[str, SaverFactory] = {
    "redis": _sync_factory(cluster=False),
    "redis-async": _async_factory(cluster=False),
    "redis-cluster": _sync_factory(cluster=True),
    "redis-cluster-async": _async_factory(cluster=True),
}
