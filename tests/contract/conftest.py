"""Fixtures of the contract suite: every backend x {sync, async}.

Tests talk to the saver through `Api`, which calls either the sync methods or
their ``a``-prefixed twins, so each test is written once and checks both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from tests.contract.backends import BACKENDS


class Api:
    """Uniform awaitable access to a saver in sync or async mode."""

    def __init__(self, saver: BaseCheckpointSaver[Any], mode: str) -> None:
        self.saver = saver
        self.mode = mode
        self.is_async = mode == "async"

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return await getattr(self.saver, "a" + name)(*args, **kwargs)
        return getattr(self.saver, name)(*args, **kwargs)

    async def put(self, *args: Any) -> RunnableConfig:
        return await self.call("put", *args)  # type: ignore[no-any-return]

    async def put_writes(self, *args: Any, **kwargs: Any) -> None:
        await self.call("put_writes", *args, **kwargs)

    async def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.call("get_tuple", config)  # type: ignore[no-any-return]

    async def list(self, config: RunnableConfig | None, **kwargs: Any) -> list[CheckpointTuple]:
        if self.is_async:
            return [t async for t in self.saver.alist(config, **kwargs)]
        return list(self.saver.list(config, **kwargs))

    async def delete_thread(self, thread_id: str) -> None:
        await self.call("delete_thread", thread_id)

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self.call("delete_for_runs", run_ids)

    async def copy_thread(self, source: str, target: str) -> None:
        await self.call("copy_thread", source, target)

    async def prune(self, thread_ids: Sequence[str], strategy: str = "keep_latest") -> None:
        await self.call("prune", thread_ids, strategy=strategy)

    async def list_threads(self, **kwargs: Any) -> Any:
        return await self.call("list_threads", **kwargs)

    async def fork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        return await self.call("fork_thread", config, new_thread_id)  # type: ignore[no-any-return]

    async def delta_history(self, config: RunnableConfig, channels: Sequence[str]) -> Any:
        return await self.call("get_delta_channel_history", config=config, channels=channels)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def saver(backend: str, request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    with BACKENDS[backend](request) as made:
        yield made


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(saver: BaseCheckpointSaver[Any], mode: str) -> Api:
    return Api(saver, mode)
