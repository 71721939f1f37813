"""Flavour glue of the PostgreSQL checkpointer: bridges, loop affinity, locks.

The saver is written once, as async code (`_async`), and its sync twin is
generated from it. The few names that differ between the flavours are
defined here in pairs, and the generator's rename table (``SYNC_NAMES`` in
`_async`) swaps one for the other: `AsyncLock`/`SyncLock`,
`AsyncOp`/`SyncOp`, `AsyncWrites`/`SyncWrites`,
`AsyncPostgresBridge`/`SyncPostgresBridge`, and the
loop-affinity decorators `on_own_loop`/`on_own_loop_iter`, which become the
no-op `as_is` in the sync twin.

Loop affinity: an async pool belongs to the event loop it was opened on. The
decorated coroutine methods of `AsyncPostgresCheckpointer` run directly when
awaited on that loop; awaited from another loop (a second thread's loop, a
test framework's per-test loop), they run on the saver's own loop and the
caller awaits the result, instead of failing deep inside the driver.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

from langchain_core.runnables import RunnableConfig
from psycopg import AsyncConnection, Connection

from checkpointkit.checkpointers._bridge import AsyncBridge, SyncBridge
from checkpointkit.checkpointers.postgres._codec import CheckpointSummary, SweepResult
from checkpointkit.errors import ConfigurationError

__all__ = [
    "AsyncLock",
    "AsyncOp",
    "AsyncPostgresBridge",
    "AsyncWrites",
    "SyncLock",
    "SyncOp",
    "SyncPostgresBridge",
    "SyncWrites",
    "as_is",
    "on_own_loop",
    "on_own_loop_iter",
]

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="AsyncPostgresBridge")
F = TypeVar("F")

AsyncLock = asyncio.Lock
SyncLock = threading.Lock

# An operation run on one pooled connection (retried as a whole on a new one).
AsyncOp = Callable[[AsyncConnection[Any]], Awaitable[T]]
SyncOp = Callable[[Connection[Any]], T]

_UNSET: Any = object()


class _Pending:
    """One write in flight; its event is made only if a read comes to wait for it."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: Any = None


class _Writes:
    """The writes of each thread this saver has in flight (see `AsyncWrites`).

    Reads that wait are rare, so a write registers a bare token and a waiting
    read gives it an event; both happen under the lock, so ``done`` sets
    every event a read is waiting on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # never held across an await
        self._pending: dict[str, list[_Pending]] = {}

    def start(self, thread_id: str) -> _Pending:
        """Register a write of `thread_id`; pass the token to ``done`` when it ends."""
        token = _Pending()
        with self._lock:
            pending = self._pending.get(thread_id)
            if pending is None:
                self._pending[thread_id] = [token]
            else:
                pending.append(token)
        return token

    def done(self, thread_id: str, token: _Pending) -> None:
        """Mark a write started with ``start`` finished (stored or failed)."""
        with self._lock:
            pending = self._pending[thread_id]
            pending.remove(token)
            if not pending:
                del self._pending[thread_id]
            event = token.event
        if event is not None:
            event.set()

    def _now(self, thread_id: str) -> list[_Pending]:
        with self._lock:
            return list(self._pending.get(thread_id, ()))

    def _events(self, thread_id: str, make: Callable[[], Any]) -> list[Any]:
        """Return an event for each write of `thread_id` in flight now."""
        with self._lock:
            events = []
            for token in self._pending.get(thread_id, ()):
                if token.event is None:
                    token.event = make()
                events.append(token.event)
            return events


class AsyncWrites(_Writes):
    """Read-your-writes within one saver: a read of a thread waits for its writes in flight.

    LangGraph stores a step's checkpoint in the background while the next
    step's nodes run; on a pool, a read of the same thread on another
    connection could overtake that write. Reads wait for the writes already
    started when they begin (not for later ones), as if this process's
    operations on one thread ran in the order they were issued.
    """

    async def wait(self, thread_id: str) -> None:
        """Wait for the writes of `thread_id` in flight now."""
        for event in self._events(thread_id, asyncio.Event):
            await event.wait()


class SyncWrites(_Writes):
    """`AsyncWrites` for the sync saver's threads."""

    def wait(self, thread_id: str) -> None:
        """Wait for the writes of `thread_id` in flight now."""
        for event in self._events(thread_id, threading.Event):
            event.wait()


def as_is(fn: F) -> F:
    """Return `fn` unchanged: the sync twin's stand-in for the loop-affinity decorators."""
    return fn


def _foreign_loop(saver: AsyncBridge) -> asyncio.AbstractEventLoop | None:
    """Return the saver's loop when the caller runs on another one, else None."""
    running = asyncio.get_running_loop()
    loop = saver.loop
    if loop is None:
        saver.loop = running  # created outside a loop: adopt the first one that uses it
        return None
    if loop is running:
        return None
    if loop.is_closed() or not loop.is_running():
        raise ConfigurationError(
            f"{type(saver).__name__} belongs to an event loop that is no longer running; "
            "create the checkpointer on the loop that uses it"
        )
    return loop


def on_own_loop(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run a coroutine method on the saver's own event loop, whoever awaits it."""

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = _foreign_loop(self)
        if loop is None:
            return await method(self, *args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), loop)
        return await asyncio.wrap_future(future)

    return run


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def on_own_loop_iter(
    method: Callable[Concatenate[S, P], AsyncIterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """Drive an async-generator method on the saver's own event loop, step by step."""

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        iterator = method(self, *args, **kwargs)
        loop = _foreign_loop(self)
        if loop is None:
            async for item in iterator:
                yield item
            return
        try:
            while True:
                try:
                    future = asyncio.run_coroutine_threadsafe(_next(iterator), loop)
                    item = await asyncio.wrap_future(future)
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close(), loop))

    return run


class AsyncPostgresBridge(AsyncBridge):
    """Sync methods of the async saver's extras, run on its loop (see `AsyncBridge`)."""

    def setup(self) -> None:
        """Create or migrate the tables; see ``asetup``."""
        self._wait(self.asetup())  # type: ignore[attr-defined]

    def sweep(
        self, *, ttl: Any = _UNSET, keep_last: Any = _UNSET, batch_size: int = 100
    ) -> SweepResult:
        """Apply the retention policy; see ``asweep``."""
        kwargs: dict[str, Any] = {"batch_size": batch_size}
        if ttl is not _UNSET:
            kwargs["ttl"] = ttl
        if keep_last is not _UNSET:
            kwargs["keep_last"] = keep_last
        return self._wait(self.asweep(**kwargs))  # type: ignore[attr-defined,no-any-return]

    def list_metadata(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointSummary]:
        """List checkpoints without their values; see ``alist_metadata``."""
        it: AsyncIterator[CheckpointSummary] = self.alist_metadata(  # type: ignore[attr-defined]
            config, filter=filter, before=before, limit=limit
        )
        while True:
            try:
                yield self._wait(_next(it))
            except StopAsyncIteration:
                return

    def storage_bytes(self, thread_id: str | None = None) -> int:
        """Return the stored payload and row bytes; see ``astorage_bytes``."""
        return self._wait(self.astorage_bytes(thread_id))  # type: ignore[attr-defined,no-any-return]

    def disk_bytes(self) -> int:
        """Return the on-disk size of the tables; see ``adisk_bytes``."""
        return self._wait(self.adisk_bytes())  # type: ignore[attr-defined,no-any-return]


class SyncPostgresBridge(SyncBridge):
    """Async methods of the sync saver's extras, run in worker threads (see `SyncBridge`)."""

    async def asetup(self) -> None:
        """Create or migrate the tables; see ``setup``."""
        await self._call(self.setup)  # type: ignore[attr-defined]

    async def asweep(self, **kwargs: Any) -> SweepResult:
        """Apply the retention policy; see ``sweep``."""
        return await self._call(self.sweep, **kwargs)  # type: ignore[attr-defined,no-any-return]

    async def alist_metadata(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointSummary]:
        """List checkpoints without their values; see ``list_metadata``."""
        it: Iterator[CheckpointSummary] = self.list_metadata(  # type: ignore[attr-defined]
            config, filter=filter, before=before, limit=limit
        )
        done = object()
        while (item := await self._call(next, it, done)) is not done:
            yield item  # type: ignore[misc]

    async def astorage_bytes(self, thread_id: str | None = None) -> int:
        """Return the stored payload and row bytes; see ``storage_bytes``."""
        return await self._call(self.storage_bytes, thread_id)  # type: ignore[attr-defined,no-any-return]

    async def adisk_bytes(self) -> int:
        """Return the on-disk size of the tables; see ``disk_bytes``."""
        return await self._call(self.disk_bytes)  # type: ignore[attr-defined,no-any-return]
