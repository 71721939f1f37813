"""`AsyncPostgresCheckpointer`: the storage core on PostgreSQL through psycopg 3.

This async module is the only hand-written implementation: `_sync.py`
(`PostgresCheckpointer`) is generated from it by ``tools/async_to_sync.py``.
SQL lives in `_queries`, parameters and row decoding in `_codec`, the schema
in `_schema`; this module only sends statements and waits.

Mechanism:

* No saver-wide lock: each operation takes its own connection from the pool,
  so concurrent operations run in parallel (a single connection, when given
  one, is used by one operation at a time, as a connection must be). Only a
  read of a thread waits, for the writes of that thread this saver has in
  flight (`AsyncWrites`): LangGraph stores a step in the background while the
  next one runs, and a read must not overtake it.
* ``put`` and ``get_tuple`` are one call of a server-side function
  (`_functions`, schema versions 2 to 4) whose plans the session caches, so one
  round trip on an autocommit connection and next to no planning, through
  PgBouncer too: a ``put`` writes the changed channel values, the checkpoint
  and the thread's summary row atomically; a ``get_tuple`` returns the
  checkpoint, the values it needs (with the list delta chains this process
  does not hold) and its writes. ``put_writes`` is one multi-row
  ``INSERT``. ``list`` reads keyset pages, one statement each, holding no
  connection between pages (`_pages`).
* ``put`` checks that each list delta's base exists once it holds the
  thread's lock: a put racing a prune that deletes the base fails instead of
  committing a dangling delta, and is re-planned as a snapshot
  (`StorageCore.rebase_missing`).
* With ``single_writer=True``, ``put`` also takes the exclusive advisory lock
  of its (thread, namespace) and looks up the newest stored checkpoint id
  there, in the same statement: a put that does not build on it raises
  `WriteConflictError` and stores nothing (`check_single_writer`).
* Maintenance (prune, delete, sweep, copy) takes per-thread advisory locks;
  ``put`` takes the same lock shared, so garbage collection never interleaves
  with a write of the thread it cleans.
* A dropped connection is retried on a fresh one for up to ``retry_timeout``
  seconds when the operation is idempotent (all are but ``fork_thread``).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from time import monotonic
from types import EllipsisType
from typing import Any, TypeVar, cast

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers._rows import CheckpointRow
from checkpointkit.checkpointers.base import (
    CoreSaverMixin,
    PutPlan,
    StorageCore,
    ThreadInfo,
    check_single_writer,
    check_strategy,
    check_thread_id,
    config_for,
    metadata_matches,
    next_version,
    validate_filter,
)
from checkpointkit.checkpointers.postgres import _codec, _errors
from checkpointkit.checkpointers.postgres._bridges import (
    AsyncLock,
    AsyncOp,
    AsyncPostgresBridge,
    AsyncWrites,
    on_own_loop,
    on_own_loop_iter,
)
from checkpointkit.checkpointers.postgres._codec import (
    CheckpointSummary,
    KeepRule,
    SweepResult,
)
from checkpointkit.checkpointers.postgres._options import (
    ListSpec,
    config_keys,
    connection_kwargs,
    list_spec,
    retention,
)
from checkpointkit.checkpointers.postgres._pages import (
    NO_HINTS,
    PageReader,
    RecentLists,
    SummaryReader,
)
from checkpointkit.checkpointers.postgres._queries import Queries
from checkpointkit.checkpointers.postgres._schema import (
    SCHEMA_VERSION,
    Names,
    thread_lock,
    writer_lock,
)
from checkpointkit.errors import ConfigurationError, CorruptDataError
from checkpointkit.serde import SerializerProtocol, default_serializer, is_contextual

__all__ = ["AsyncPostgresCheckpointer"]

SYNC_NAMES = {
    "AsyncPostgresCheckpointer": "PostgresCheckpointer",
    "AsyncPostgresBridge": "SyncPostgresBridge",
    "AsyncLock": "SyncLock",
    "AsyncWrites": "SyncWrites",
    "AsyncOp": "SyncOp",
    "on_own_loop": "as_is",
    "on_own_loop_iter": "as_is",
    "alist_metadata": "list_metadata",
    "astorage_bytes": "storage_bytes",
    "adisk_bytes": "disk_bytes",
}

T = TypeVar("T")
_MAX_DEPTH = 1_000_000  # bound of the ancestor walk: parent links never loop in valid data
_RETRY_FIRST, _RETRY_MAX = 0.05, 1.0  # seconds between attempts, doubling


@asynccontextmanager
async def _atomic(conn: AsyncConnection[Any], *, always: bool = False) -> AsyncIterator[None]:
    """Make the block one transaction (a savepoint inside the caller's own).

    One statement on an autocommit connection is atomic by itself: no
    BEGIN/COMMIT round trips unless `always`.
    """
    if conn.autocommit and not always:
        yield
        return
    async with conn.transaction():
        yield


async def _fetch(conn: AsyncConnection[Any], query: bytes, params: Mapping[str, Any]) -> list[Any]:
    if not conn.autocommit:
        async with _atomic(conn):
            return await _fetch_now(conn, query, params)
    return await _fetch_now(conn, query, params)  # one statement: atomic by itself


async def _fetch_now(
    conn: AsyncConnection[Any], query: bytes, params: Mapping[str, Any]
) -> list[Any]:
    async with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _execute(conn: AsyncConnection[Any], query: bytes, params: Mapping[str, Any]) -> None:
    if not conn.autocommit:
        async with _atomic(conn):
            await conn.execute(query, params)
        return
    await conn.execute(query, params)  # one statement: atomic by itself


class AsyncPostgresCheckpointer(CoreSaverMixin, AsyncPostgresBridge, BaseCheckpointSaver[str]):
    """A checkpointer storing LangGraph checkpoints in PostgreSQL.

    `AsyncPostgresCheckpointer` serves ``ainvoke``/``astream`` and, from any
    thread but its event loop's, sync calls too; its async methods may be
    awaited from any event loop. `PostgresCheckpointer` is the same code for
    ``invoke``/``stream`` (generated from it), with async methods that run the
    sync ones in worker threads.

    Args:
        conn: A connection pool (give its connections ``autocommit=True`` for
            one round trip per operation) or a single connection, which
            serves one operation at a time.
        schema: Schema of the tables, created if missing.
        table_prefix: Prefix of the table and index names.
        serde: Serializer of channel values and writes (default: msgpack).
        delta_lists: Store list channels as deltas (default True).
        verify_items: Also notice list items edited in place and put again
            without being written by a task (a pass over the list per step).
        auto_setup: Create or migrate the tables on first use.
        ttl: Retention: ``sweep`` deletes threads not written for this long
            (a `timedelta` or seconds).
        keep_last: Retention: ``sweep`` keeps this many newest checkpoints per
            thread and namespace (plus what ``DeltaChannel`` values need).
        page_size: Checkpoints read per ``list`` query.
        retry_timeout: Seconds to keep retrying an idempotent operation on a
            fresh connection after the server went away (each attempt may
            also wait up to the pool's own ``timeout`` for a connection).
        single_writer: Refuse, with `WriteConflictError`, a put that does not
            build on the newest checkpoint of its thread and namespace
            (another worker ran the same thread meanwhile), instead of
            letting the history fork silently. Checked atomically inside the
            put's statement, under an advisory lock of that namespace, so two
            workers racing on one thread cannot both pass; a refused put
            stores nothing. See `check_single_writer`.

    Example:
        ```python
        with PostgresCheckpointer.from_conn_string(uri, schema="app") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke(inputs, {"configurable": {"thread_id": "1"}})

        async with AsyncPostgresCheckpointer.from_conn_string(uri, schema="app") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "1"}})
        ```
    """

    def __init__(
        self,
        conn: AsyncConnectionPool[Any] | AsyncConnection[Any],
        *,
        schema: str = "public",
        table_prefix: str = "ck_",
        serde: SerializerProtocol | None = None,
        delta_lists: bool = True,
        verify_items: bool = False,
        auto_setup: bool = True,
        ttl: timedelta | float | None = None,
        keep_last: int | None = None,
        page_size: int = 100,
        retry_timeout: float = 10.0,
        single_writer: bool = False,
    ) -> None:
        super().__init__(serde=serde or default_serializer())
        self._pool = conn if isinstance(conn, AsyncConnectionPool) else None
        self._conn = conn if isinstance(conn, AsyncConnection) else None
        if self._pool is None and self._conn is None:
            owner = type(self).__name__
            raise _errors.not_a_connection(owner, conn, "a connection pool or a connection")
        if not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(f"page_size must be a positive int, got {page_size!r}")
        if retry_timeout < 0:
            raise ConfigurationError(f"retry_timeout must be >= 0, got {retry_timeout!r}")
        self._ttl, self._keep_last = retention(ttl, keep_last)
        self._names = Names(schema, table_prefix)
        self._q = Queries(self._names)
        self._lock_class = self._names.lock_class  # a hash: computed once, used by every put
        self._core = StorageCore(self.serde, delta_lists=delta_lists, verify_items=verify_items)
        self._recent = RecentLists()
        self._auto_setup = auto_setup
        self._ready = False
        self._setup_lock = AsyncLock()
        self._conn_lock = AsyncLock()
        self._writes = AsyncWrites()
        self._page_size = page_size
        self._retry_timeout = retry_timeout
        self.single_writer = single_writer
        try:  # async-only
            self.loop = asyncio.get_running_loop()  # async-only
        except RuntimeError:  # async-only
            self.loop = None  # async-only

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        schema: str = "public",
        table_prefix: str = "ck_",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        max_idle: float = 600.0,
        max_lifetime: float = 3600.0,
        prepare_threshold: int | None = None,
        synchronous_commit: str | None = None,
        connect_kwargs: Mapping[str, Any] | None = None,
        pool_kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> AsyncIterator[AsyncPostgresCheckpointer]:
        """Open a pool on `conn_string`, yield a saver on it, close the pool after.

        Args:
            conn_string: A libpq connection string or ``postgresql://`` URI.
            schema: Schema of the tables (created if missing).
            table_prefix: Prefix of the table and index names.
            min_size: Connections the pool keeps open.
            max_size: Most connections the pool opens (concurrent operations).
            timeout: Seconds to wait for a connection from the pool.
            max_idle: Seconds an idle connection above `min_size` is kept.
            max_lifetime: Seconds after which a connection is replaced.
            prepare_threshold: Prepare a statement run this many times on a
                connection (0: at once). None (the default) never prepares, as
                PgBouncer's transaction mode needs (before 1.21, or without
                ``max_prepared_statements``). On a direct connection, 0 also
                skips parsing the calls: ``get_tuple`` ~20 %, ``put_writes``
                ~35 % faster.
            synchronous_commit: PostgreSQL's ``synchronous_commit`` for the
                pool's connections (``"off"`` trades the last few commits on a
                server crash for write speed), sent as a startup option (behind
                PgBouncer, set it on the role instead); None keeps the server's.
            connect_kwargs: Extra keyword arguments of each connection.
            pool_kwargs: Extra keyword arguments of the pool (``check``,
                ``reconnect_timeout``...).
            **options: The saver's own options (``serde``, ``ttl``, ``keep_last``,
                ``single_writer``...).

        Raises:
            BackendUnavailableError: the server cannot be reached within `timeout`.
        """
        kwargs = connection_kwargs(
            conn_string, prepare_threshold, synchronous_commit, connect_kwargs
        )
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conn_string,
            kwargs=kwargs,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            max_idle=max_idle,
            max_lifetime=max_lifetime,
            open=False,
            name=f"checkpointkit-{schema}",
            **(pool_kwargs or {}),
        )
        try:
            try:
                await pool.open(wait=True, timeout=timeout)
            except PoolTimeout as exc:
                raise _errors.unreachable(exc) from exc
            saver = cls(pool, schema=schema, table_prefix=table_prefix, **options)
            if saver._auto_setup:
                await saver.asetup()
            yield saver
        finally:
            await pool.close()

    # -- running operations --------------------------------------------------------

    @asynccontextmanager
    async def _own_connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """Lend the saver's single connection, to one operation at a time."""
        async with self._conn_lock:
            yield cast(AsyncConnection[Any], self._conn)

    async def _run(self, op: AsyncOp[T], *, idempotent: bool = True) -> T:
        """Run `op` on a connection, retrying it on a fresh one when that is safe."""
        if not self._ready:
            await self._ensure_setup()
        return await self._attempt(op, idempotent)

    async def _read(self, query: bytes, params: Mapping[str, Any]) -> builtins.list[Any]:
        return await self._run(partial(_fetch, query=query, params=params))

    async def _attempt(self, op: AsyncOp[T], idempotent: bool) -> T:
        deadline = monotonic() + self._retry_timeout
        delay = _RETRY_FIRST
        while True:
            try:
                if self._pool is None:
                    async with self._own_connection() as conn:
                        return await op(conn)
                # The pool's connection() without its two wrapping context managers (hot path).
                conn = await self._pool.getconn()
                try:
                    if conn.autocommit:  # no transaction left to commit or roll back
                        return await op(conn)
                    async with conn:  # commit, or roll back on error, as connection() does
                        return await op(conn)
                finally:
                    await self._pool.putconn(conn)
            except psycopg.Error as exc:
                # A fresh connection only helps with a pool; a conflict was rolled back.
                dropped = _errors.is_disconnect(exc) and self._pool is not None
                retry = idempotent and (dropped or _errors.is_conflict(exc))
                if not retry or monotonic() + delay > deadline:
                    error = _errors.translate(exc)
                    if error is None:
                        raise
                    raise error from exc
                if dropped and self._pool is not None:
                    await self._pool.check()  # drop the pool's other dead connections
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    def _remember(self, thread_id: str, ns: str, lists: Mapping[str, ListState]) -> None:
        self._core.remember(thread_id, ns, lists)
        self._recent.note(thread_id, ns, lists)

    def _forget(self, thread_ids: Sequence[str]) -> None:
        self._core.forget(thread_ids)
        self._recent.forget(thread_ids)

    async def _ensure_setup(self) -> None:
        if not self._auto_setup:
            self._ready = True
            return
        async with self._setup_lock:
            if not self._ready:
                await self.asetup()

    @on_own_loop
    async def asetup(self) -> None:
        """Create the schema and tables, or migrate them, under an advisory lock.

        Idempotent, safe in or out of a transaction (it uses a savepoint in
        one), and safe when many workers start at once.

        Raises:
            SchemaVersionError: the tables were written by a newer checkpointkit.
        """
        q, names = self._q, self._names

        async def op(conn: AsyncConnection[Any]) -> None:
            async with _atomic(conn, always=True), conn.cursor() as cur:
                table = {"schema": names.schema, "table": names.prefix + "schema_version"}
                await cur.execute(q.table_exists, table)
                exists = await cur.fetchone()
                if exists is not None and exists[0] is not None:
                    await cur.execute(q.schema_version)
                    stamped = await cur.fetchone()
                    if stamped is not None and stamped[0] == SCHEMA_VERSION:
                        return  # up to date: no lock, no DDL
                await cur.execute(q.setup_lock, {"key": names.setup_lock})
                # Scripts of several statements cannot be prepared, whatever
                # the connection's prepare_threshold.
                await cur.execute(q.bootstrap, prepare=False)
                await cur.execute(q.schema_version)
                stamped = await cur.fetchone()
                current = (stamped[0] if stamped else None) or 0
                if current > SCHEMA_VERSION:
                    raise _errors.schema_too_new(
                        names.schema, names.prefix, current, SCHEMA_VERSION
                    )
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    await cur.execute(q.migrations[version - 1], prepare=False)
                    await cur.execute(q.stamp_version, {"version": version})

        await self._attempt(op, True)
        self._ready = True

    # -- reads ---------------------------------------------------------------------

    @on_own_loop
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint named by `config`, or the thread's latest one (one query)."""
        thread_id, ns, checkpoint_id = config_keys(config)
        await self._writes.wait(thread_id)
        params = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}
        hint = self._recent.params(thread_id, ns)
        while True:
            fetched = _codec.decode_rows(await self._read(self._q.get_tuple, {**params, **hint}))
            if not fetched.checkpoints:
                return None
            row = fetched.checkpoints[0][1]
            try:
                blobs, writes = fetched.blobs_of(row), fetched.writes_of(row)
                tup, lists = self._core.decode_tuple(row, blobs, writes)
                break
            except CorruptDataError:
                if hint["cached"] is None:
                    raise
                hint = {"cached": None}  # the cache moved on
        self._remember(thread_id, ns, lists)
        return tup

    @on_own_loop_iter
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """List checkpoints newest first, across namespaces unless `config` names one.

        Reads pages of ``page_size`` checkpoints (one query each) as the
        iteration proceeds; a metadata filter is served by the GIN index. A
        page leaves out the delta-chain rows of the list versions this
        process holds (its cache, and what the pages before rebuilt).
        """
        spec = list_spec(config, filter, before, limit, values=True)
        reader = PageReader.for_list(
            self._core, self._recent, spec.params["thread_id"], spec.wanted
        )
        async for _, item in self._pages(spec, reader):
            yield item

    @on_own_loop_iter
    async def alist_metadata(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointSummary]:
        """List checkpoints like ``alist``, without reading their values or writes."""
        spec = list_spec(config, filter, before, limit, values=False)
        async for _, item in self._pages(spec, SummaryReader(self._core, spec.wanted)):
            yield item

    async def _pages(
        self, spec: ListSpec, reader: SummaryReader
    ) -> AsyncIterator[tuple[CheckpointRow, Any]]:
        """Yield the matching rows of a list, each with its item, one keyset page per query.

        Each page is decoded whole before it is yielded; a page whose held
        versions turn out not to cover it is read again naming none.
        """
        if spec.params["thread_id"] is not None:
            await self._writes.wait(spec.params["thread_id"])
        remaining = spec.limit
        params = dict(spec.params)
        shape = spec.shape
        while remaining is None or remaining > 0:
            size = self._page_size if remaining is None else min(self._page_size, remaining)
            params["page_size"] = size
            hints = reader.held()
            while True:
                query = self._q.list_page(shape._replace(held=hints is not NO_HINTS))
                rows = await self._read(query, {**params, **hints})
                fetched = _codec.decode_page(rows, values=shape.values)
                page = fetched.ordered()
                selected = reader.select(page, remaining)
                try:
                    items = reader.decode(selected, fetched)
                    break
                except CorruptDataError:
                    if hints is NO_HINTS:
                        raise
                    hints = NO_HINTS  # the held versions did not cover this page
            for k, row in enumerate(selected):
                yield row, items[k]
            if remaining is not None:
                remaining -= len(items)
            if len(page) < size:
                return
            last = page[-1]
            params.update(
                after_id=last.checkpoint_id,
                after_thread=last.thread_id,
                after_ns=last.checkpoint_ns,
            )
            shape = shape._replace(cursor=True)

    @on_own_loop
    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Walk the parent chain once for all `channels`, in one recursive query."""
        if not channels:
            return {}
        thread_id, ns, checkpoint_id = config_keys(config)
        _codec.check_texts("channel name", channels)
        params = {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
            "channels": list(channels),
            "max_depth": _MAX_DEPTH,
        }
        fetched = _codec.decode_rows(await self._read(self._q.delta_history, params))
        blobs = fetched.blobs.get((thread_id, ns), {})
        steps = self._core.delta_history_walk(fetched.ancestors(), blobs, channels)
        writes = {row.checkpoint_id: fetched.writes_of(row) for row, _, _ in steps}
        return self._core.delta_history(steps, blobs, writes, channels)

    @on_own_loop
    async def alist_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> builtins.list[ThreadInfo]:
        """Summarise threads newest first, optionally filtered on their latest metadata.

        Served by the threads summary table: no checkpoint is read.
        """
        wanted = validate_filter(filter)
        params: dict[str, Any] = {
            "filter": _codec.filter_json(wanted),
            "after_updated": None,
            "after_thread": None,
            "page_size": self._page_size,
        }
        infos: builtins.list[ThreadInfo] = []
        while limit is None or limit < 0 or len(infos) < limit:
            rows = await self._read(self._q.list_threads, dict(params))
            infos += [
                i for i in map(_codec.thread_info, rows) if metadata_matches(i.metadata, wanted)
            ]
            if len(rows) < self._page_size:
                break
            params.update(after_updated=rows[-1][3], after_thread=rows[-1][0])
        return infos[:limit] if limit is not None else infos

    # -- writes --------------------------------------------------------------------

    @on_own_loop
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint in one atomic statement; only changed channels are written.

        Idempotent by checkpoint id, so it is retried after a dropped connection.

        Raises:
            WriteConflictError: with ``single_writer=True``, a newer checkpoint
                than the put's parent is stored in its thread and namespace;
                nothing of the put is stored.
            ConfigurationError: an id, timestamp or channel name cannot be
                stored as PostgreSQL text (a NUL character, a lone surrogate).
        """
        plan = self._core.plan_put(config, checkpoint, metadata, new_versions)
        row = plan.checkpoint
        lock = (self._lock_class, thread_lock(row.thread_id))
        guard = None
        if self.single_writer:
            guard = writer_lock(self._names, row.thread_id, row.checkpoint_ns)
        token = self._writes.start(row.thread_id)
        try:
            await self._put(plan, lock, guard)
        finally:
            self._writes.done(row.thread_id, token)
        return plan.config

    async def _put(self, plan: PutPlan, lock: tuple[int, int], guard: int | None) -> None:
        row = plan.checkpoint
        for attempt in range(3):
            try:
                params = _codec.put_params(plan, lock, guard)
                await self._run(partial(_execute, query=self._q.put, params=params))
                break
            except psycopg.errors.ForeignKeyViolation:
                # A delta's base was deleted meanwhile (a prune): store those lists whole.
                found = await self._read(self._q.existing_bases, _codec.bases_params(plan))
                missing = plan.delta_bases - {(channel, version) for channel, version in found}
                if attempt == 2 or not missing:
                    raise
                self._core.rebase_missing(plan, missing)
            except psycopg.Error as exc:
                newest = _errors.newest_id(exc)
                if newest is None:
                    raise
                check_single_writer(row, newest)  # raises WriteConflictError
                raise  # the guard in SQL and in Python disagree: never silently pass
        self._remember(row.thread_id, row.checkpoint_ns, plan.learned)

    @on_own_loop
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes: ordinary ones first-wins, special ones (idx < 0) replaced."""
        rows = self._core.plan_writes(config, writes, task_id, task_path)
        if rows:
            keep, replace, params = _codec.write_params(rows)
            query = self._q.put_writes(keep, replace)
            token = self._writes.start(rows[0].thread_id)
            try:
                await self._run(partial(_execute, query=query, params=params))
            finally:
                self._writes.done(rows[0].thread_id, token)

    @on_own_loop
    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread.

        Raises:
            ConfigurationError: the id cannot be PostgreSQL text (NUL, lone surrogate).
        """
        thread_id = str(thread_id)
        _codec.check_texts("thread id", [thread_id])

        async def op(conn: AsyncConnection[Any]) -> None:
            async with _atomic(conn, always=True):
                await self._lock_threads(conn, [thread_id])
                await conn.execute(self._q.delete_threads, {"thread_ids": [thread_id]})

        await self._run(op)
        self._forget([thread_id])

    @on_own_loop
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by the given runs."""
        runs = sorted({str(r) for r in run_ids})
        if not runs:
            return
        _codec.check_texts("run id", runs)
        q = self._q

        async def op(conn: AsyncConnection[Any]) -> builtins.list[str]:
            async with _atomic(conn, always=True):
                threads = [r[0] for r in await _fetch(conn, q.run_threads, {"run_ids": runs})]
                if threads:
                    await self._lock_threads(conn, threads)
                    params = {"run_ids": runs, "thread_ids": threads}
                    await self._collect(conn, await _fetch(conn, q.delete_runs, params))
                return threads

        self._forget(await self._run(op))

    @on_own_loop
    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``keep_latest`` per namespace (DeltaChannel-safe) or ``delete``.

        Kept checkpoints keep their writes, so pending interrupts survive.
        """
        check_strategy(strategy)
        ids = sorted({str(t) for t in thread_ids})
        if not ids:
            return
        _codec.check_texts("thread id", ids)
        keep = partial(self._core.keep_for_prune, strategy=strategy)

        async def op(conn: AsyncConnection[Any]) -> None:
            async with _atomic(conn, always=True):
                await self._lock_threads(conn, ids)
                await self._trim(conn, ids, keep)

        await self._run(op)
        self._forget(ids)

    @on_own_loop
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread to another thread id."""
        source, target = str(source_thread_id), check_thread_id(target_thread_id)
        _codec.check_texts("thread id", [source, target])

        async def op(conn: AsyncConnection[Any]) -> None:
            async with _atomic(conn, always=True):
                await self._lock_threads(conn, [source, target])
                await self._copy(conn, source, target, None)

        await self._run(op)

    @on_own_loop
    async def afork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        """Copy a checkpoint and its ancestors into a new thread; return the fork's config.

        Not retried after a dropped connection: a fork that committed unseen
        would make the retry fail on the now-existing thread.

        Raises:
            ConfigurationError: the checkpoint does not exist, or the new thread does.
            BackendUnavailableError: the connection dropped during the fork.
        """
        thread_id, ns, checkpoint_id = config_keys(config)
        new_id = check_thread_id(new_thread_id)
        _codec.check_texts("thread id", [new_id])
        q = self._q

        async def op(conn: AsyncConnection[Any]) -> RunnableConfig:
            async with _atomic(conn, always=True):
                await self._lock_threads(conn, [thread_id, new_id])
                if (await _fetch(conn, q.thread_exists, {"thread_id": new_id}))[0][0]:
                    raise ConfigurationError(f"cannot fork into thread {new_id!r}: it exists")
                found = await _fetch(conn, q.thread_rows, {"thread_ids": [thread_id]})
                rows = [_codec.checkpoint_row(r) for r in found]
                target, selection = _codec.fork_target(rows, thread_id, ns, checkpoint_id)
                await self._copy(conn, thread_id, new_id, selection)
                return config_for(new_id, ns, target.checkpoint_id)

        return await self._run(op, idempotent=False)

    # -- retention -----------------------------------------------------------------

    @on_own_loop
    async def asweep(
        self,
        *,
        ttl: timedelta | float | EllipsisType | None = ...,
        keep_last: int | EllipsisType | None = ...,
        batch_size: int = 100,
    ) -> SweepResult:
        """Apply the retention policy: delete expired threads, trim long ones.

        Safe to run from many workers at once: each claims threads with
        ``FOR UPDATE SKIP LOCKED`` and skips a thread another session holds
        (a writer, another sweeper), so no worker waits for another.

        Args:
            ttl: Override the saver's `ttl` for this sweep.
            keep_last: Override the saver's `keep_last` for this sweep.
            batch_size: Threads handled per transaction.
        """
        ttl_s, keep = retention(
            self._ttl if isinstance(ttl, EllipsisType) else ttl,
            self._keep_last if isinstance(keep_last, EllipsisType) else keep_last,
        )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size must be a positive int, got {batch_size!r}")
        expired = pruned = deleted = 0
        if ttl_s is not None:
            expired, _ = await self._sweep(self._q.expired_threads, {"ttl": ttl_s}, batch_size)
        if keep is not None:
            claim, args = self._q.overgrown_threads, {"keep_last": keep}
            rule = partial(self._core.keep_for_prune, strategy="keep_latest", keep_last=keep)
            pruned, deleted = await self._sweep(claim, args, batch_size, rule)
        return SweepResult(expired, pruned, deleted)

    async def _sweep(
        self, claim: bytes, args: dict[str, Any], batch_size: int, keep: KeepRule | None = None
    ) -> tuple[int, int]:
        """Claim batches of threads and delete them (or trim them with `keep`).

        Returns:
            The threads handled and the checkpoints deleted by trimming.
        """
        q = self._q
        skip: builtins.list[str] = []  # claimed threads another session holds
        threads = checkpoints = 0

        async def op(
            conn: AsyncConnection[Any],
        ) -> tuple[builtins.list[str], builtins.list[str], int]:
            async with _atomic(conn, always=True):
                params = {**args, "skip": skip, "batch": batch_size}
                claimed = [r[0] for r in await _fetch(conn, claim, params)]
                locked = await self._try_lock_threads(conn, claimed)
                removed = 0
                if locked and keep is None:
                    await conn.execute(q.delete_threads, {"thread_ids": locked})
                elif locked and keep is not None:
                    removed = await self._trim(conn, locked, keep)
                    await conn.execute(q.mark_swept, {"thread_ids": locked})
                return claimed, locked, removed

        while True:
            claimed, locked, removed = await self._run(op)
            self._forget(locked)
            skip += [t for t in claimed if t not in locked]
            threads += len(locked)
            checkpoints += removed
            if len(claimed) < batch_size:
                return threads, checkpoints

    # -- maintenance helpers ---------------------------------------------------------

    async def _lock_threads(self, conn: AsyncConnection[Any], thread_ids: Sequence[str]) -> None:
        """Take the threads' advisory locks, in key order so lockers never deadlock."""
        keys = sorted({thread_lock(t) for t in thread_ids})
        await _fetch(conn, self._q.lock_threads, {"lock_a": self._names.lock_class, "lock_b": keys})

    async def _try_lock_threads(
        self, conn: AsyncConnection[Any], thread_ids: Sequence[str]
    ) -> builtins.list[str]:
        """Take the advisory locks that are free; return the threads locked."""
        if not thread_ids:
            return []
        params = {
            "lock_a": self._names.lock_class,
            "thread_ids": list(thread_ids),
            "lock_b": [thread_lock(t) for t in thread_ids],
        }
        return [r[0] for r in await _fetch(conn, self._q.try_lock_threads, params)]

    async def _trim(
        self, conn: AsyncConnection[Any], thread_ids: Sequence[str], keep: KeepRule
    ) -> int:
        """Delete the checkpoints `keep` does not keep; return how many."""
        params = {"thread_ids": list(thread_ids)}
        rows = map(_codec.checkpoint_row, await _fetch(conn, self._q.thread_rows, params))
        kinds = _codec.blob_kinds(await _fetch(conn, self._q.thread_blob_kinds, params))
        doomed = _codec.doomed(rows, kinds, keep)
        if doomed:
            params = _codec.key_params(doomed)
            await self._collect(conn, await _fetch(conn, self._q.delete_checkpoints, params))
        return len(doomed)

    async def _collect(self, conn: AsyncConnection[Any], spaces: Sequence[Any]) -> None:
        """Drop the unreferenced values of (thread, namespace) pairs; refresh summaries."""
        if not spaces:
            return
        threads, namespaces = [s[0] for s in spaces], [s[1] for s in spaces]
        await conn.execute(self._q.collect, {"thread_ids": threads, "namespaces": namespaces})
        await conn.execute(self._q.refresh_threads, {"thread_ids": sorted(set(threads))})

    async def _copy(
        self,
        conn: AsyncConnection[Any],
        source: str,
        target: str,
        selection: Sequence[CheckpointRow] | None,
    ) -> None:
        """Copy checkpoints (all when `selection` is None) with their writes and values."""
        keys = _codec.key_params(selection or ())
        params = {"source": source, "target": target, "everything": selection is None, **keys}
        if not is_contextual(self.serde):
            await conn.execute(self._q.copy_in_sql, params)
        else:  # values are bound to their place (encryption): re-encode each one
            fetched = _codec.decode_rows(await _fetch(conn, self._q.copy_rows, params))
            checkpoints, blobs, writes = _codec.recontexted(self._core, fetched, target)
            await conn.execute(self._q.insert_checkpoints, {**params, **checkpoints})
            await conn.execute(self._q.insert_blobs, blobs)
            await conn.execute(self._q.insert_writes, writes)
        await conn.execute(self._q.refresh_threads, {"thread_ids": [target]})

    # -- measurement -----------------------------------------------------------------

    @on_own_loop
    async def astorage_bytes(self, thread_id: str | None = None) -> int:
        """Return the bytes held for one thread (or all), counted as the memory saver does."""
        params = {"thread_id": None if thread_id is None else str(thread_id)}
        _codec.check_texts("thread id", [params["thread_id"]])
        return int((await self._read(self._q.storage_bytes, params))[0][0])

    @on_own_loop
    async def adisk_bytes(self) -> int:
        """Return the on-disk size of the saver's tables with their indexes and TOAST."""
        params = {"schema": self._names.schema, "tables": self._names.table_names}
        return int((await self._read(self._q.disk_bytes, params))[0][0])

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)
