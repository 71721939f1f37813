"""`SQLiteCheckpointer` and `AsyncSQLiteCheckpointer`: one implementation, two front doors.

Every operation is written once, as a sync method that parses its arguments
with the storage core, runs the SQL of `_store` in one short transaction of
`_connection.Database`, and decodes the rows after the transaction ended.
Each ``a``-prefixed twin runs that same sync method in a worker thread
(``asyncio.to_thread``, via `SyncBridge`), so the event loop never blocks on
SQLite and the sync
methods never touch an event loop: either class works under ``invoke`` and
``ainvoke``, also from inside a running loop. The two public classes differ
only in their ``from_conn_string`` context manager (``with`` or ``async
with``); the async one exists so code written for LangGraph's
``AsyncSqliteSaver`` reads naturally.

``list`` streams: it reads one page of rows per short read transaction (keyset
on ``checkpoint_id``), decodes it, yields it, and only then reads the next, so
nothing is locked while the caller iterates and ``get_tuple`` inside the loop
works.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from typing_extensions import Self

from checkpointkit.checkpointers._bridge import SyncBridge
from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers.base import (
    ListMemo,
    StorageCore,
    ThreadInfo,
    check_strategy,
    checkpoint_id_of,
    checkpoint_ns_of,
    config_for,
    metadata_matches,
    next_version,
    thread_id_of,
    validate_filter,
)
from checkpointkit.checkpointers.sqlite import _store
from checkpointkit.checkpointers.sqlite._connection import Database
from checkpointkit.checkpointers.sqlite._load import Loaded, load, load_one
from checkpointkit.checkpointers.sqlite._rowcache import RowCache
from checkpointkit.checkpointers.sqlite._schema import (
    SCHEMA_VERSION,
    check_pragmas,
    check_version,
    default_pragmas,
    migrate,
    stored_version,
)
from checkpointkit.checkpointers.sqlite._sql import fetch_checkpoint
from checkpointkit.errors import (
    CheckpointKitError,
    ConfigurationError,
    CorruptDataError,
    DecryptionError,
    SerializationError,
    UnknownTypeError,
)
from checkpointkit.serde import SerializerProtocol, default_serializer

__all__ = ["AsyncSQLiteCheckpointer", "SQLiteCheckpointer", "SweepResult"]

_IDLE_BATCH = 100


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one `sweep` removed."""

    deleted_threads: int  # idle threads deleted whole (``ttl``)
    pruned_checkpoints: int  # checkpoints removed by ``keep_last``


def _seconds(ttl: timedelta | float | None) -> float | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigurationError(f"ttl must be a positive timedelta or seconds, got {ttl!r}")
    return float(seconds)


def _keep(keep_last: int | None) -> int | None:
    if keep_last is None:
        return None
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ConfigurationError(f"keep_last must be an int >= 1, got {keep_last!r}")
    return keep_last


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Report stored bytes the serializer cannot read as `CorruptDataError`.

    A type off the allowlist or a failed decryption keeps its own error: those
    are settings to fix, not damaged rows.
    """
    try:
        yield
    except (UnknownTypeError, DecryptionError):
        raise
    except (SerializationError, CorruptDataError) as exc:  # say where it is
        raise CorruptDataError(f"{what} cannot be decoded: {exc}") from exc
    except CheckpointKitError:
        raise
    except Exception as exc:  # a serializer that raises its own errors on bad bytes
        raise CorruptDataError(f"{what} cannot be decoded: {type(exc).__name__}: {exc}") from exc


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
    return limit


class _SQLiteCheckpointerBase(SyncBridge, BaseCheckpointSaver[str]):
    """The implementation both SQLite checkpointers share; see `SQLiteCheckpointer`.

    `SyncBridge` supplies the ``a``-prefixed twins: each runs the sync method
    in a worker thread. ``alist`` is overridden to fetch a page per trip.
    """

    def __init__(
        self,
        conn: str | os.PathLike[str] | sqlite3.Connection = ":memory:",
        *,
        serde: SerializerProtocol | None = None,
        delta_lists: bool = True,
        verify_items: bool = False,
        synchronous: str = "NORMAL",
        timeout: float = 5.0,
        pragmas: Mapping[str, str | int] | None = None,
        page_size: int = 100,
        ttl: timedelta | float | None = None,
        keep_last: int | None = None,
        retain_on_put: bool = False,
    ) -> None:
        super().__init__(serde=serde or default_serializer())
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ConfigurationError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(f"page_size must be an int >= 1, got {page_size!r}")
        self.ttl = _seconds(ttl)
        self.keep_last = _keep(keep_last)
        self.retain_on_put = bool(retain_on_put)
        self.page_size = page_size
        settings = default_pragmas(synchronous=synchronous, timeout=float(timeout))
        settings.update(pragmas or {})
        self._core = StorageCore(self.serde, delta_lists=delta_lists, verify_items=verify_items)
        self._rows = RowCache()  # stored value rows this process wrote or read
        self._db = Database(conn, check_pragmas(settings), float(timeout))
        self._setup_lock = threading.Lock()
        self._is_setup = False
        self._sweep_lock = threading.Lock()
        self._last_idle_sweep = 0.0

    @property
    def path(self) -> str | None:
        """The database file (None for an in-memory database)."""
        return self._db.path

    # -- lifecycle -------------------------------------------------------------------

    def setup(self) -> None:
        """Create or migrate the schema; idempotent, and run on first use anyway.

        Raises:
            SchemaVersionError: the file was written by a newer checkpointkit.
        """
        with self._setup_lock:
            if self._is_setup:
                return
            with self._db.read() as cur:
                version = stored_version(cur)
            check_version(version)
            if version < SCHEMA_VERSION:
                with self._db.write() as cur:
                    migrate(cur)
            self._is_setup = True

    def _ready(self) -> None:
        if not self._is_setup:
            self.setup()

    def close(self) -> None:
        """Close the connections this checkpointer opened."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> Self:
        """Return a clone whose serializer has a wider msgpack allowlist (same database)."""
        clone = cast(Self, super().with_allowlist(extra_allowlist))
        if clone is not self:
            clone._core = StorageCore(
                clone.serde,
                delta_lists=self._core.delta_lists,
                verify_items=self._core.verify_items,
            )
        return clone

    # -- reads -----------------------------------------------------------------------

    def _decode(
        self, loaded: Loaded, i: int, memo: ListMemo | None = None
    ) -> tuple[CheckpointTuple, dict[str, ListState]]:
        row = loaded.rows[i]
        blobs = loaded.blobs.get((row.thread_id, row.checkpoint_ns), {})
        writes = loaded.writes.get((row.thread_id, row.checkpoint_ns, row.checkpoint_id), [])
        with _decoding(f"checkpoint {row.checkpoint_id!r} of thread {row.thread_id!r}"):
            return self._core.decode_tuple(
                row, blobs, writes, memo=memo, skeleton=loaded.skeletons[i]
            )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint named by `config`, or the namespace's latest one.

        One query reads the checkpoint and its writes; its values come from
        the rows this process stored or read before, the others in one more.
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        self._ready()
        with self._db.read() as cur:
            row, writes = fetch_checkpoint(cur, thread_id, ns, checkpoint_id)
            if row is None:
                return None
            skeleton, blobs = load_one(cur, self._core, row, self._rows)
        with _decoding(f"checkpoint {row.checkpoint_id!r} of thread {row.thread_id!r}"):
            tup, lists = self._core.decode_tuple(row, blobs, writes, skeleton=skeleton)
        self._core.remember(thread_id, ns, lists)
        return tup

    def _list_cursor(
        self,
        config: RunnableConfig | None,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> _store.ListCursor:
        wanted = validate_filter(filter)
        before_id = checkpoint_id_of(before) if before else None
        thread_id = ns = only_id = None
        if config is not None:
            thread_id = thread_id_of(config)
            if config["configurable"].get("checkpoint_ns") is not None:
                ns = checkpoint_ns_of(config)
            only_id = checkpoint_id_of(config)
        return _store.ListCursor(
            thread_id, ns, only_id, before_id, wanted, _limit(limit), self.page_size
        )

    def _list_page(self, lc: _store.ListCursor) -> builtins.list[CheckpointTuple]:
        """Read, filter and decode the next page of a listing (one short read)."""
        if lc.done or lc.remaining == 0:
            lc.done = True
            return []
        self._ready()
        with self._db.read() as cur:
            rows = _store.page_rows(cur, lc)
            if lc.filter:  # the index may over-select; match exactly like memory
                rows = [
                    r
                    for r in rows
                    if metadata_matches(self._core.decode_metadata(r.metadata), lc.filter)
                ]
            if lc.remaining is not None:
                rows = rows[: lc.remaining]
            loaded = load(cur, self._core, rows, lc.memos, self._rows, lc.tails)
        page = []
        for i, row in enumerate(rows):
            group = (row.thread_id, row.checkpoint_ns)
            tup, lists = self._decode(loaded, i, lc.memos.setdefault(group, ListMemo()))
            page.append(tup)
            blobs = loaded.blobs.get(group, {})
            for channel, state in lists.items():  # the next page slices from these
                blob = blobs.get((channel, state.version))
                if blob is not None:
                    lc.tails[(row.thread_id, row.checkpoint_ns, channel)] = (blob, state)
        if lc.remaining is not None:
            lc.remaining -= len(page)
            lc.done = lc.done or lc.remaining <= 0
        return page

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first, across namespaces unless `config` names one.

        Rows are read a page at a time; no transaction stays open between pages.
        """
        lc = self._list_cursor(config, filter, before, limit)
        while not lc.done:
            yield from self._list_page(lc)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Walk the parent chain once for all `channels` (see LangGraph's contract)."""
        if not channels:
            return {}
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        self._ready()
        with self._db.read() as cur:
            steps, blobs, writes = _store.delta_history_rows(
                cur, self._core, thread_id, ns, checkpoint_id, channels
            )
        with _decoding(f"the delta channel history of thread {thread_id!r}"):
            return self._core.delta_history(steps, blobs, writes, channels)

    def list_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> builtins.list[ThreadInfo]:
        """Summarise threads newest first, optionally filtered on their latest metadata."""
        wanted = validate_filter(filter)
        limit = _limit(limit)
        if limit == 0:
            return []
        size = -1 if limit is None else max(limit, 100)  # -1: no LIMIT in SQLite
        out: builtins.list[ThreadInfo] = []
        self._ready()
        with self._db.read() as cur:
            after: tuple[str, str] | None = None
            while True:
                rows = _store.thread_page(cur, wanted, after, size)
                for thread_id, metadata, count, created, updated in rows:
                    info = ThreadInfo(
                        thread_id, self._core.decode_metadata(metadata), count, created, updated
                    )
                    if not wanted or metadata_matches(info.metadata, wanted):
                        out.append(info)
                if size < 0 or len(rows) < size or (limit is not None and len(out) >= limit):
                    break
                after = (rows[-1][4], rows[-1][0])
        return out[:limit] if limit is not None else out

    def storage_bytes(self, thread_id: str | None = None) -> int:
        """Return the bytes stored for one thread (or all), counted like the memory saver.

        Payloads, row keys and a fixed per-row overhead, as in
        `MemoryCheckpointer.storage_bytes`, so the two compare like with like;
        the file itself also holds indexes and free pages (see `path`).
        """
        self._ready()
        with self._db.read() as cur:
            return _store.storage_bytes(cur, None if thread_id is None else str(thread_id))

    # -- writes ----------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint, all or nothing; only channels in `new_versions` get new values."""
        plan = self._core.plan_put(config, checkpoint, metadata, new_versions)
        row = plan.checkpoint
        self._ready()
        if self.retain_on_put and self.ttl is not None:
            self._sweep_idle_now_and_then(row.thread_id)
        with self._db.write() as cur:
            _store.put(cur, self._core, plan, time.time())
            if (
                self.retain_on_put
                and self.keep_last is not None
                and _store.namespace_size(cur, row.thread_id, row.checkpoint_ns) > self.keep_last
            ):
                _store.prune_thread(
                    cur, self._core, row.thread_id, last=self.keep_last, ns=row.checkpoint_ns
                )
        self._core.remember(row.thread_id, row.checkpoint_ns, plan.learned)
        self._rows.keep(plan.blobs)  # committed: the next read need not fetch them
        return plan.config

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes; ordinary writes are kept first-wins, special ones replaced."""
        rows = self._core.plan_writes(config, writes, task_id, task_path)
        if not rows:
            return
        self._ready()
        with self._db.write() as cur:
            _store.put_writes(cur, rows)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread."""
        self._ready()
        with self._db.write() as cur:
            _store.delete_threads(cur, [str(thread_id)])
        self._forget([str(thread_id)])
        self._reclaim()

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by the given runs."""
        runs = [str(r) for r in run_ids]
        if not runs:
            return
        self._ready()
        with self._db.write() as cur:
            touched = _store.delete_for_runs(cur, self._core, runs)
        self._forget(touched)
        self._reclaim()

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``keep_latest`` per namespace (DeltaChannel-safe) or ``delete``."""
        check_strategy(strategy)
        threads = [str(t) for t in thread_ids]
        self._ready()
        for thread_id in threads:  # one short transaction per thread
            with self._db.write() as cur:
                _store.prune_thread(cur, self._core, thread_id, strategy=strategy)
            self._forget([thread_id])
        if threads:
            self._reclaim()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread to another thread id."""
        source, target = str(source_thread_id), str(target_thread_id)
        self._ready()
        with self._db.write() as cur:
            rows = _store.thread_rows(cur, source)
            if rows:
                _store.copy_rows(cur, self._core, rows, target, time.time())

    def fork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        """Copy a checkpoint and its ancestors into a new thread; return the fork's config.

        Raises:
            ConfigurationError: the checkpoint does not exist, or the new thread does.
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        new_id = str(new_thread_id)
        self._ready()
        with self._db.write() as cur:
            forked = _store.fork(cur, self._core, thread_id, ns, checkpoint_id, new_id, time.time())
        return config_for(new_id, ns, forked)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)

    # -- retention -------------------------------------------------------------------

    def sweep(
        self,
        *,
        ttl: timedelta | float | None = None,
        keep_last: int | None = None,
    ) -> SweepResult:
        """Apply the retention policy to every thread, and reclaim the space freed.

        Args:
            ttl: Delete threads in which no checkpoint was stored for this long
                (a `timedelta` or seconds; default: the constructor's ``ttl``).
            keep_last: Keep this many latest checkpoints per thread and
                namespace, plus what their pending writes and ``DeltaChannel``
                reconstruction need (default: the constructor's ``keep_last``).

        Returns:
            How many threads and checkpoints were removed.
        """
        seconds = _seconds(ttl) if ttl is not None else self.ttl
        last = _keep(keep_last) if keep_last is not None else self.keep_last
        self._ready()
        deleted = pruned = 0
        if seconds is not None:
            deleted = self._sweep_idle(time.time() - seconds)
        if last is not None:
            with self._db.read() as cur:
                crowded = _store.crowded_threads(cur, last)
            for thread_id in crowded:
                with self._db.write() as cur:
                    pruned += _store.prune_thread(cur, self._core, thread_id, last=last)
                self._forget([thread_id])
        if deleted or pruned:
            self._reclaim()
        return SweepResult(deleted, pruned)

    def _sweep_idle(self, cutoff: float, spare: str | None = None) -> int:
        with self._db.read() as cur:
            idle = [t for t in _store.idle_threads(cur, cutoff) if t != spare]
        deleted = 0
        for start in range(0, len(idle), _IDLE_BATCH):
            with self._db.write() as cur:
                # Re-checked under the write lock: a put may have revived one.
                doomed = _store.still_idle(cur, idle[start : start + _IDLE_BATCH], cutoff)
                _store.delete_threads(cur, doomed)
            self._forget(doomed)
            deleted += len(doomed)
        return deleted

    def _sweep_idle_now_and_then(self, active: str) -> None:
        """Delete idle threads before a put, at most every ``min(ttl / 2, 60)`` s."""
        if self.ttl is None:
            return
        now = time.time()
        if now - self._last_idle_sweep < min(self.ttl / 2, 60.0):
            return
        if not self._sweep_lock.acquire(blocking=False):
            return  # another thread of this process is sweeping
        try:
            self._last_idle_sweep = now
            # The thread being written is active whatever its summary says.
            if self._sweep_idle(now - self.ttl, spare=active):
                self._reclaim()
        finally:
            self._sweep_lock.release()

    def _forget(self, thread_ids: Sequence[str]) -> None:
        """Drop what this process remembers of threads whose rows were deleted."""
        self._core.forget(thread_ids)
        self._rows.forget(thread_ids)

    def _reclaim(self) -> None:
        """Return free pages to the file system (the file uses incremental auto-vacuum)."""
        self._db.reclaim_space()

    # -- async twins: the sync operation in a worker thread ---------------------------
    # `SyncBridge` provides the others (each runs its sync method through
    # ``asyncio.to_thread``; a cancelled caller lets the operation finish or
    # roll back on its own, never half-way).

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """List checkpoints like `list`, one page per worker-thread call."""
        lc = self._list_cursor(config, filter, before, limit)
        while not lc.done:
            for item in await asyncio.to_thread(self._list_page, lc):
                yield item

    async def asetup(self) -> None:
        await asyncio.to_thread(self.setup)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def astorage_bytes(self, thread_id: str | None = None) -> int:
        return await asyncio.to_thread(self.storage_bytes, thread_id)

    async def asweep(
        self, *, ttl: timedelta | float | None = None, keep_last: int | None = None
    ) -> SweepResult:
        return await asyncio.to_thread(self.sweep, ttl=ttl, keep_last=keep_last)


class SQLiteCheckpointer(_SQLiteCheckpointerBase):
    """A checkpointer that stores checkpoints in a SQLite database file.

    Works for sync and async graphs (``invoke`` and ``ainvoke``), from many
    threads and processes at once. Use `from_conn_string` as a context
    manager, or construct it and call `close` when done.

    Args:
        conn: A database file path (or ``file:`` URI), ``":memory:"`` (the
            default), or an open ``sqlite3.Connection`` created with
            ``check_same_thread=False`` (shared under a lock; you close it).
        serde: Serializer for channel values and writes.
        delta_lists: Store list channels as deltas (default True).
        verify_items: Also notice list items edited in place and put again
            without being written by a task (a pass over the list per step).
        synchronous: ``"NORMAL"`` (default: durable across application
            crashes, in WAL mode) or ``"FULL"``/``"EXTRA"`` (also across power
            loss, slower).
        timeout: Seconds to wait for another writer before `LockTimeoutError`.
        pragmas: Extra or overriding pragmas for every connection.
        page_size: Checkpoints read per query by ``list``.
        ttl: Retention: delete threads in which no checkpoint was stored for
            this long (`timedelta` or seconds), when `sweep` runs.
        keep_last: Retention: keep this many latest checkpoints per thread and
            namespace (plus what their ``DeltaChannel`` values need), when
            `sweep` runs.
        retain_on_put: Also apply the retention policy while writing:
            ``keep_last`` to the namespace of every put, in its transaction,
            and ``ttl`` to the other threads at most every ``min(ttl / 2, 60)``
            seconds.

    Raises:
        ConfigurationError: an option is out of range.

    Example:
        ```python
        from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer

        with SQLiteCheckpointer.from_conn_string("checkpoints.sqlite") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "1"}})
        ```
    """

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[Self]:
        """Open a checkpointer on a path (or ``":memory:"``), closed on exit.

        Args:
            conn_string: The database path, ``file:`` URI or ``":memory:"``.
            **options: Constructor options (``timeout``, ``synchronous``...).
        """
        saver = cls(conn_string, **options)
        try:
            saver.setup()
            yield saver
        finally:
            saver.close()


class AsyncSQLiteCheckpointer(_SQLiteCheckpointerBase):
    """`SQLiteCheckpointer` with an ``async with`` constructor.

    The same implementation and arguments (it works under ``invoke`` too);
    its async methods run the SQLite calls in worker threads, so the event
    loop never waits on the database.

    Example:
        ```python
        from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer

        async with AsyncSQLiteCheckpointer.from_conn_string("checkpoints.sqlite") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "1"}})
        ```
    """

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn_string: str, **options: Any) -> AsyncIterator[Self]:
        """Open a checkpointer on a path (or ``":memory:"``), closed on exit.

        Args:
            conn_string: The database path, ``file:`` URI or ``":memory:"``.
            **options: Constructor options (``timeout``, ``synchronous``...).
        """
        saver = cls(conn_string, **options)
        try:
            await saver.asetup()
            yield saver
        finally:
            saver.close()
