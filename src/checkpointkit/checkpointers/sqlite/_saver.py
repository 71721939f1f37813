"""`SQLiteCheckpointer` and `AsyncSQLiteCheckpointer`: one implementation, two front doors.

Every operation is written once, as a sync method that parses its arguments
with the storage core, runs the SQL of `_store` in one short transaction of
`_connection.Database`, and decodes the rows after the transaction ended.
Each ``a``-prefixed twin runs that same sync method in a worker thread
(``asyncio.to_thread``, via `SyncBridge`), so the event loop never blocks on
SQLite and the sync methods never touch an event loop: either class works
under ``invoke`` and ``ainvoke``, also from inside a running loop. Puts are
the exception that keeps the rule: ``put`` and ``put_writes`` encode their
values and hand the SQL to the database's write queue (`_writes`), which
commits the puts that arrive together in one transaction; ``aput`` and
``aput_writes`` do the same from the event loop and await the commit without
holding a thread. The two public classes differ only in their
``from_conn_string`` context manager (``with`` or ``async with``); the async
one exists so code written for LangGraph's ``AsyncSqliteSaver`` reads
naturally.

``get_tuple`` reads the checkpoint and its writes in one statement; the value
rows, lists and decoded plain values it needs come from the process's caches
(`_rowcache`, the core's decoded values and lists) when this process wrote or
read them before, and only what is missing is read in a read transaction.

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
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
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
    PutPlan,
    StorageCore,
    ThreadInfo,
    check_single_writer,
    check_strategy,
    check_thread_id,
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
from checkpointkit.checkpointers.sqlite._load import Loaded, load, load_cached, load_one
from checkpointkit.checkpointers.sqlite._retention import (
    RetentionMixin,
    SweepResult,
    keep_of,
    seconds_of,
)
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
from checkpointkit.checkpointers.sqlite._writes import WriteQueue
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


def _decode_error(what: str, exc: Exception) -> Exception:
    """Return the error to raise when stored bytes cannot be read: a `CorruptDataError`.

    A type off the allowlist or a failed decryption keeps its own error: those
    are settings to fix, not damaged rows.
    """
    if isinstance(exc, (UnknownTypeError, DecryptionError)):
        return exc
    if isinstance(exc, (SerializationError, CorruptDataError)):  # say where it is
        return CorruptDataError(f"{what} cannot be decoded: {exc}")
    if isinstance(exc, CheckpointKitError):
        return exc
    # a serializer that raises its own errors on bad bytes
    return CorruptDataError(f"{what} cannot be decoded: {type(exc).__name__}: {exc}")


@contextmanager
def _decoding(what: str) -> Iterator[None]:
    """Report stored bytes the serializer cannot read as `CorruptDataError` (`_decode_error`)."""
    try:
        yield
    except Exception as exc:
        error = _decode_error(what, exc)
        if error is exc:
            raise
        raise error from exc


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
    return limit


class _SQLiteCheckpointerBase(RetentionMixin, SyncBridge, BaseCheckpointSaver[str]):
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
        single_writer: bool = False,
    ) -> None:
        super().__init__(serde=serde or default_serializer())
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ConfigurationError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(f"page_size must be an int >= 1, got {page_size!r}")
        self.ttl = seconds_of(ttl)
        self.keep_last = keep_of(keep_last)
        self.retain_on_put = bool(retain_on_put)
        self.single_writer = bool(single_writer)
        self.page_size = page_size
        settings = default_pragmas(synchronous=synchronous, timeout=float(timeout))
        settings.update(pragmas or {})
        self._core = StorageCore(self.serde, delta_lists=delta_lists, verify_items=verify_items)
        self._rows = RowCache()  # stored value rows this process wrote or read
        self._db = Database(conn, check_pragmas(settings), float(timeout))
        self._writes = WriteQueue(self._db)
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
        self._writes.close()
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
            clone._core = self._core.with_serde(clone.serde)
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

        One statement reads the checkpoint and its writes; its values come
        from the rows this process stored or read before. Only when some are
        missing does a read transaction fetch them (with the checkpoint again).
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        self._ready()
        core, rows = self._core, self._rows
        found = self._db.run(lambda cur: load_cached(cur, core, thread_id, ns, checkpoint_id, rows))
        if found is False:
            return None
        if found is True:
            with self._db.read() as cur:
                row, writes = fetch_checkpoint(cur, thread_id, ns, checkpoint_id)
                if row is None:  # deleted meanwhile
                    return None
                skeleton, blobs = load_one(cur, core, row, rows)
        else:
            row, writes, skeleton, blobs = found
        try:  # not `_decoding`: the place is named only when something fails
            tup, lists = core.decode_tuple(row, blobs, writes, skeleton=skeleton)
        except Exception as exc:
            what = f"checkpoint {row.checkpoint_id!r} of thread {row.thread_id!r}"
            error = _decode_error(what, exc)
            if error is exc:
                raise
            raise error from exc
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

    def _put_job(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[PutPlan, Callable[[sqlite3.Cursor], None]]:
        """Plan a put (encoding its values here) and return the SQL job that stores it."""
        plan = self._core.plan_put(config, checkpoint, metadata, new_versions)
        row = plan.checkpoint
        core, now = self._core, time.time()
        guard = self.single_writer
        keep_last = self.keep_last if self.retain_on_put else None

        def job(cur: sqlite3.Cursor) -> None:
            if guard:  # in the put's transaction: no other writer can slip in between
                check_single_writer(row, _store.newest_id(cur, row.thread_id, row.checkpoint_ns))
            _store.put(cur, core, plan, now)
            if (
                keep_last is not None
                and _store.namespace_size(cur, row.thread_id, row.checkpoint_ns) > keep_last
            ):
                _store.prune_thread(cur, core, row.thread_id, last=keep_last, ns=row.checkpoint_ns)

        return plan, job

    def _put_done(self, plan: PutPlan, new_versions: ChannelVersions) -> RunnableConfig:
        """Teach the process's caches what a committed put stored."""
        row = plan.checkpoint
        self._core.remember(row.thread_id, row.checkpoint_ns, plan.learned)
        self._rows.keep(plan.blobs)  # the next read need not fetch them
        stored = {b.channel for b in plan.blobs}
        self._rows.keep_absent(
            (row.thread_id, row.checkpoint_ns, channel, str(version))
            for channel, version in new_versions.items()
            if channel not in stored
        )
        return plan.config

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint, all or nothing; only channels in `new_versions` get new values.

        Returns once the checkpoint is committed. Puts of other threads of
        this process that arrive meanwhile are committed in the same
        transaction (see `_writes`).

        Raises:
            WriteConflictError: with ``single_writer=True``, a checkpoint newer
                than this put's parent is stored in its thread and namespace.
            LockTimeoutError: another writer held the database past the timeout.
        """
        plan, job = self._put_job(config, checkpoint, metadata, new_versions)
        self._ready()
        if self._sweep_before_put():
            self._sweep_idle_now_and_then(plan.checkpoint.thread_id)
        self._writes.run(job)
        return self._put_done(plan, new_versions)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint like `put`: values encoded here, the SQL run by the writer thread."""
        plan, job = self._put_job(config, checkpoint, metadata, new_versions)
        if not self._is_setup:
            await asyncio.to_thread(self.setup)
        if self._sweep_before_put():
            await asyncio.to_thread(self._sweep_idle_now_and_then, plan.checkpoint.thread_id)
        await self._writes.arun(job)
        return self._put_done(plan, new_versions)

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
        self._writes.run(lambda cur: _store.put_writes(cur, rows))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes like `put_writes`, the SQL run by the writer thread."""
        rows = self._core.plan_writes(config, writes, task_id, task_path)
        if not rows:
            return
        if not self._is_setup:
            await asyncio.to_thread(self.setup)
        await self._writes.arun(lambda cur: _store.put_writes(cur, rows))

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
        """Copy every checkpoint, write and value of a thread to another thread id.

        Raises:
            ConfigurationError: the target id is not usable (`check_thread_id`).
        """
        source, target = str(source_thread_id), check_thread_id(target_thread_id)
        self._ready()
        with self._db.write() as cur:
            rows = _store.thread_rows(cur, source)
            if rows:
                _store.copy_rows(cur, self._core, rows, target, time.time())

    def fork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        """Copy a checkpoint and its ancestors into a new thread; return the fork's config.

        Raises:
            ConfigurationError: the checkpoint does not exist, the new thread does, or
                its id is not usable (`check_thread_id`).
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        new_id = check_thread_id(new_thread_id)
        self._ready()
        with self._db.write() as cur:
            forked = _store.fork(cur, self._core, thread_id, ns, checkpoint_id, new_id, time.time())
        return config_for(new_id, ns, forked)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)

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
        single_writer: Refuse, with `WriteConflictError`, a put that does not
            build on the newest checkpoint of its thread and namespace:
            another writer (process, thread or run) got there first, and
            storing it would silently fork the history. Checked inside the
            put's ``BEGIN IMMEDIATE`` transaction, so of two concurrent puts
            on one parent exactly one is stored, whichever processes make
            them. See `check_single_writer`.

    Raises:
        ConfigurationError: an option is out of range.
        WriteConflictError: (from ``put``) with ``single_writer=True``,
            another writer stored a newer checkpoint in the thread.

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
            **options: Constructor options (``timeout``, ``synchronous``,
                ``single_writer``...).
        """
        saver = cls(conn_string, **options)
        try:
            saver.setup()
            yield saver
        finally:
            saver.close()


class AsyncSQLiteCheckpointer(_SQLiteCheckpointerBase):
    """`SQLiteCheckpointer` with an ``async with`` constructor.

    The same implementation and arguments, ``single_writer`` included (it
    works under ``invoke`` too). Its async methods run the SQLite calls in
    worker threads, so the event loop never waits on the database: reads in
    ``asyncio.to_thread``, and puts in the process's writer thread, which
    commits the puts that arrive together in one transaction (``aput``
    returns once its checkpoint is committed). Values are encoded on the
    event loop, as LangGraph's own async savers do.

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
            **options: Constructor options (``timeout``, ``synchronous``,
                ``single_writer``...).
        """
        saver = cls(conn_string, **options)
        try:
            await saver.asetup()
            yield saver
        finally:
            saver.close()
