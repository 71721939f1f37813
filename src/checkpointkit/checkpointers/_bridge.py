"""Bridges that give a one-flavoured saver the methods of the other flavour.

LangGraph calls a saver's sync methods under ``invoke`` and its ``a``-prefixed
methods under ``ainvoke``. A backend is written once per flavour (a sync class
whose twin is generated from the async one); these mixins fill in the other
flavour's methods so either class works under both:

* `SyncBridge` (for sync savers): each ``a``-method runs the sync method in a
  worker thread, so the event loop is never blocked by database I/O.
* `AsyncBridge` (for async savers): each sync method schedules the coroutine
  on the loop the saver runs on and waits for it. Called from that loop's own
  thread it would deadlock, so it raises a clear error there instead.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from checkpointkit.checkpointers.base import ThreadInfo
from checkpointkit.errors import ConfigurationError

__all__ = ["AsyncBridge", "SyncBridge"]

T = TypeVar("T")
_DONE = object()


class SyncBridge:
    """Async methods for a sync saver: the sync method runs in a worker thread.

    A saver whose methods do no I/O (the memory checkpointer) sets
    ``offload_io = False`` and its async methods call the sync ones inline.
    """

    offload_io = True

    async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if self.offload_io:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call(self.get_tuple, config)  # type: ignore[attr-defined,no-any-return]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        it: Iterator[CheckpointTuple] = self.list(  # type: ignore[attr-defined]
            config, filter=filter, before=before, limit=limit
        )
        while (item := await self._call(next, it, _DONE)) is not _DONE:
            yield item  # type: ignore[misc]

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call(self.put, config, checkpoint, metadata, new_versions)  # type: ignore[attr-defined,no-any-return]

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._call(self.put_writes, config, writes, task_id, task_path)  # type: ignore[attr-defined]

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self.delete_thread, thread_id)  # type: ignore[attr-defined]

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._call(self.delete_for_runs, run_ids)  # type: ignore[attr-defined]

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._call(self.copy_thread, source_thread_id, target_thread_id)  # type: ignore[attr-defined]

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._call(self.prune, thread_ids, strategy=strategy)  # type: ignore[attr-defined]

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._call(  # type: ignore[no-any-return]
            self.get_delta_channel_history,  # type: ignore[attr-defined]
            config=config,
            channels=channels,
        )

    async def alist_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> list[ThreadInfo]:
        return await self._call(self.list_threads, filter, limit)  # type: ignore[attr-defined,no-any-return]

    async def afork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        return await self._call(self.fork_thread, config, new_thread_id)  # type: ignore[attr-defined,no-any-return]


class AsyncBridge:
    """Sync methods for an async saver: run the coroutine on the saver's loop.

    The saver records its loop (`self.loop`) when it is created or entered.
    """

    loop: asyncio.AbstractEventLoop | None = None

    def _wait(self, coro: Any) -> Any:
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed() or not loop.is_running():
            coro.close()
            raise ConfigurationError(
                f"{type(self).__name__} has no running event loop to serve a sync call; "
                "create it inside `async with ...from_conn_string(...)`, or use the sync class"
            )
        if running is loop:
            coro.close()
            raise ConfigurationError(
                f"sync call to {type(self).__name__} from its own event loop would deadlock; "
                "use the async methods (ainvoke/astream) or the sync checkpointer class"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._wait(self.aget_tuple(config))  # type: ignore[attr-defined,no-any-return]

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        it: AsyncIterator[CheckpointTuple] = self.alist(  # type: ignore[attr-defined]
            config, filter=filter, before=before, limit=limit
        )
        while True:
            try:
                yield self._wait(it.__anext__())
            except StopAsyncIteration:
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._wait(self.aput(config, checkpoint, metadata, new_versions))  # type: ignore[attr-defined,no-any-return]

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._wait(self.aput_writes(config, writes, task_id, task_path))  # type: ignore[attr-defined]

    def delete_thread(self, thread_id: str) -> None:
        self._wait(self.adelete_thread(thread_id))  # type: ignore[attr-defined]

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._wait(self.adelete_for_runs(run_ids))  # type: ignore[attr-defined]

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._wait(self.acopy_thread(source_thread_id, target_thread_id))  # type: ignore[attr-defined]

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._wait(self.aprune(thread_ids, strategy=strategy))  # type: ignore[attr-defined]

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._wait(  # type: ignore[no-any-return]
            self.aget_delta_channel_history(config=config, channels=channels)  # type: ignore[attr-defined]
        )

    def list_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> builtins.list[ThreadInfo]:
        return self._wait(self.alist_threads(filter, limit))  # type: ignore[attr-defined,no-any-return]

    def fork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        return self._wait(self.afork_thread(config, new_thread_id))  # type: ignore[attr-defined,no-any-return]
