"""The Redis checkpointers for the contract suite: both classes, on Redis and Redis Cluster.

Each factory yields a saver under the test's own key prefix (the harness
deletes the prefix's keys afterwards). The async class runs on an event loop
of its own, in a background thread, as an application serving both sync and
async callers would run it: sync calls go through its bridge, and coroutine
calls from the test's loop are forwarded to its loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from tests.contract.backends import SaverFactory

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in a daemon thread, for savers serving other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextmanager
def background_loop() -> Iterator[BackgroundLoop]:
    """Yield a `BackgroundLoop`, closed afterwards."""
    loop = BackgroundLoop()
    try:
        yield loop
    finally:
        loop.close()


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


def _server(request: pytest.FixtureRequest, cluster: bool) -> tuple[str, str]:
    if cluster:
        return (
            request.getfixturevalue("redis_cluster").uri,
            request.getfixturevalue("redis_cluster_prefix"),
        )
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


def _sync_factory(cluster: bool) -> SaverFactory:
    @contextmanager
    def factory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
        from checkpointkit.checkpointers.redis import RedisCheckpointer

        url, prefix = _server(request, cluster)
        with RedisCheckpointer.from_conn_string(url, prefix=prefix, cluster=cluster) as saver:
            yield saver

    return factory


def _async_factory(cluster: bool) -> SaverFactory:
    @contextmanager
    def factory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
        url, prefix = _server(request, cluster)
        with (
            background_loop() as loop,
            async_saver_on(loop, url, prefix=prefix, cluster=cluster) as saver,
        ):
            yield saver

    return factory


FACTORIES: dict[str, SaverFactory] = {
    "redis": _sync_factory(cluster=False),
    "redis-async": _async_factory(cluster=False),
    "redis-cluster": _sync_factory(cluster=True),
    "redis-cluster-async": _async_factory(cluster=True),
}
