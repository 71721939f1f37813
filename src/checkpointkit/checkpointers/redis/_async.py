"""`AsyncRedisCheckpointer`: the storage core over Redis, written once as async code.

`tools/async_to_sync.py` generates `RedisCheckpointer` (``_sync.py``) from this
module, so the two classes cannot drift. Each operation on a thread runs one
Lua script (`_scripts`) over the thread's keys (`_keys`), which makes every
``put`` and ``put_writes`` atomic and costs one round trip:

* ``get_tuple``, ``put``, ``put_writes``, ``get_delta_channel_history``: 1.
  A ``put`` raises its thread's score in the threads index (`_index`) in its
  script; on a cluster, where the index lives on other nodes, in the same
  pipeline, with one more round trip the first time this process writes the
  thread and one when the put created it.
* ``list`` of one thread: 1 per page (values, writes and delta chains
  included); 2 with a metadata filter (rows first, values of the matches).
* ``list(None)`` and ``list_threads``: per batch of threads taken from the
  threads index newest first, 1 pipeline reading the index and 1 of one
  script per thread; ``list(None)`` then 1 pipeline per page. A batch is
  about ``limit`` threads: the index is never read whole.
* ``delete_thread``: 2; ``prune``, ``fork_thread``, ``copy_thread``: 2 per thread.

The async class also serves sync callers (`AsyncBridge`: the call runs on the
saver's event loop) and callers on another event loop: its connections belong
to its own loop, so each round trip is forwarded there (`_loops`), while the
decoding runs on the caller's loop. `SyncBridge` gives the sync class its
``a``-methods.
"""

from __future__ import annotations

import asyncio
import builtins
import heapq
import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from redis.asyncio import BlockingConnectionPool as AsyncBlockingConnectionPool
from redis.asyncio import ConnectionPool as AsyncConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from checkpointkit.checkpointers._bridge import AsyncBridge
from checkpointkit.checkpointers._rows import BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import (
    BlobKey,
    ListMemo,
    StorageCore,
    ThreadInfo,
    check_strategy,
    check_text,
    check_thread_id,
    checkpoint_id_of,
    checkpoint_ns_of,
    config_for,
    fork_selection,
    metadata_matches,
    next_version,
    thread_id_of,
    validate_filter,
)
from checkpointkit.checkpointers.redis import _loops  # async-only
from checkpointkit.checkpointers.redis._codec import decode_row, encode_writes, text
from checkpointkit.checkpointers.redis._common import (
    AsyncExtras,
    ClientState,
    Retention,
    async_retry,
    client_error,
    close_node_pools,
    translate,
)
from checkpointkit.checkpointers.redis._decode import (
    DecodedReplies,
    Newest,
    PageDecoder,
    ThreadCursor,
    blob_pairs,
    delta_history_of,
    dump_rows,
    kept_writes,
    missing_bases,
    put_args,
    refuse,
    restore_args,
    rows_with_kinds,
    storage_bytes_of,
    thread_info_of,
    unkept_fields,
)
from checkpointkit.checkpointers.redis._index import (
    IndexWalk,
    id_floor,
    put_score,
    score_arg,
    ts_floor,
)
from checkpointkit.checkpointers.redis._keys import (
    DEFAULT_PREFIX,
    Layout,
    cross_range,
    escape,
    list_scope,
    row_field,
)
from checkpointkit.checkpointers.redis._scripts import (
    DROP,
    DROP_RUNS,
    DUMP,
    FETCH,
    GET,
    HISTORY,
    MEMORY,
    PAGE,
    PUT,
    RESTORE,
    ROWS,
    THREAD_INFO,
    TOUCH,
    UNINDEX,
    WRITES,
    Script,
)
from checkpointkit.errors import ConfigurationError, CorruptDataError
from checkpointkit.serde import SerializerProtocol, default_serializer

__all__ = ["AsyncRedisCheckpointer"]

SYNC_NAMES = {
    "AsyncRedisCheckpointer": "RedisCheckpointer",
    "AsyncBridge": "SyncBridge",
    "AsyncExtras": "SyncExtras",
    "AsyncBlockingConnectionPool": "BlockingConnectionPool",
    "astorage_bytes": "storage_bytes",
    "amemory_usage": "memory_usage",
    "aclosing": "closing",
    "async_retry": "sync_retry",
}

_BATCH = 256  # script calls per pipeline
_PUT_ATTEMPTS = 3
_STORED, _REFUSED = 1, 2  # PUT script replies (0: delta bases missing)
Call = tuple[Sequence[str], Sequence[Any]]


def _storable(thread_id: str) -> bool:
    """Return whether a thread can exist under `thread_id` (puts refuse NUL, lone surrogates)."""
    try:
        check_text("thread_id", thread_id)
    except ConfigurationError:
        return False
    return True


def _channel(channel: Any) -> str:
    """Return `channel`, a channel name asked for, if it is a string Redis can send."""
    if not isinstance(channel, str):
        raise ConfigurationError(
            f"channel names must be strings, got {channel!r} ({type(channel).__name__})"
        )
    return check_text("channel", channel)


class AsyncRedisCheckpointer(AsyncExtras, AsyncBridge, BaseCheckpointSaver[str]):
    """A checkpointer that stores threads in Redis (or Redis Cluster), for async graphs.

    It needs only core Redis (strings, hashes, sorted sets, Lua): no RedisJSON
    or RediSearch. Every thread lives in one hash slot, so it works unchanged on
    a cluster. Its sync methods also work, from threads other than its event
    loop's; for sync programs use `RedisCheckpointer`.

    Args:
        client: A ``redis.asyncio.Redis``, ``redis.asyncio.RedisCluster`` or
            ``redis.asyncio.ConnectionPool`` (with ``decode_responses=False``,
            the default). The checkpointer does not close it.
        prefix: Prepended to every key (default ``"checkpointkit:"``); no braces.
        serde: Serializer for values and writes (default: checkpointkit's
            msgpack serializer); wrappers such as `EncryptedSerializer` work.
        ttl: Expire a thread this long (seconds or a timedelta) after its last
            write, with Redis's own key expiry; None keeps threads forever.
        refresh_on_read: Reads (``get_tuple``, ``list``) also restart the TTL.
        keep_last: Keep only this many checkpoints per namespace of a thread
            (plus the ancestors their ``DeltaChannel`` values are rebuilt
            from); older ones are pruned in batches after puts.
        delta_lists: Store list channels as deltas (default True).
        verify_items: Notice list items edited in place without being written.
        page_size: Checkpoints fetched per round trip by ``list``.
        single_writer: Refuse, with `WriteConflictError`, a put that does not
            build on the newest checkpoint of its thread and namespace (another
            writer got there first); checked inside the put's script, so two
            concurrent puts cannot both pass. See `check_single_writer`.

    Raises:
        ConfigurationError: an argument is invalid.

    Example:
        ```python
        async with AsyncRedisCheckpointer.from_conn_string("redis://localhost") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "1"}})
        ```
    """

    def __init__(
        self,
        client: AsyncRedis | AsyncRedisCluster | AsyncConnectionPool,
        *,
        prefix: str = DEFAULT_PREFIX,
        serde: SerializerProtocol | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = False,
        keep_last: int | None = None,
        delta_lists: bool = True,
        verify_items: bool = False,
        page_size: int = 50,
        single_writer: bool = False,
    ) -> None:
        super().__init__(serde=serde or default_serializer())
        if isinstance(client, AsyncConnectionPool):
            client = AsyncRedis(connection_pool=client)
        if not isinstance(client, (AsyncRedis, AsyncRedisCluster)):
            raise client_error(client)
        if client.get_encoder().decode_responses:
            raise client_error(client, decoding=True)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(f"page_size must be an int >= 1, got {page_size!r}")
        self._client = client
        self._io: Any = client  # redis-py's command methods are untyped or flavour-typed
        # A cluster keeps the threads index in other slots than the thread's keys.
        self._cluster = isinstance(client, AsyncRedisCluster)
        self._layout = Layout(prefix)
        self._retention = Retention.of(ttl, refresh_on_read, keep_last)
        self._core = StorageCore(self.serde, delta_lists=delta_lists, verify_items=verify_items)
        self._state = ClientState()
        self._replies = DecodedReplies()
        self._page = min(page_size, 1000)
        self.single_writer = single_writer
        self.loop = _loops.running_loop()  # async-only

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool | None = None,
        serde: SerializerProtocol | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = False,
        keep_last: int | None = None,
        delta_lists: bool = True,
        verify_items: bool = False,
        page_size: int = 50,
        single_writer: bool = False,
        **client_kwargs: Any,
    ) -> AsyncIterator[AsyncRedisCheckpointer]:
        """Connect to `url`, yield a checkpointer, and close the connections after.

        Keyword arguments other than these are those of the class.

        Args:
            url: ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS).
            cluster: Connect as a Redis Cluster client; None asks the server.
            **client_kwargs: Passed to redis-py's ``from_url`` (timeouts...). Unless
                ``retry`` is given, a command whose connection fails is retried
                with backoff for up to about 3 s (every script is idempotent).

        Raises:
            BackendUnavailableError: the server cannot be reached.
            ConfigurationError: an argument is invalid.
        """
        client = await _connect(url, cluster, client_kwargs)
        try:
            async with cls(
                client, prefix=prefix, serde=serde, ttl=ttl, refresh_on_read=refresh_on_read,
                keep_last=keep_last, delta_lists=delta_lists, verify_items=verify_items,
                page_size=page_size, single_writer=single_writer,
            ) as saver:  # fmt: skip
                yield saver
        finally:
            await client.aclose()
            close_node_pools(client)

    async def __aenter__(self) -> AsyncRedisCheckpointer:
        self.loop = asyncio.get_running_loop()  # async-only
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._layout.prefix

    # -- reads -------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint named by `config`, or its namespace's latest one."""
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        keys = self._layout.thread_keys(thread_id)
        # Lists this process holds intact need no delta chain from the server: a
        # version stored on top of one starts from it (memo), others are served
        # from the core's cache.
        intact = self._state.intact(self._core, thread_id, ns)
        while True:
            reply = await self._eval(
                GET, keys,
                [self._retention.read_ttl_ms, escape(ns), escape(checkpoint_id or ""),
                 len(intact), *intact],
            )  # fmt: skip
            if not reply:
                return None
            field, value, writes, pairs = reply
            replies = self._replies
            row = replies.row(thread_id, field, value)
            blobs = blob_pairs(thread_id, pairs, replies).get(ns, {})
            memo = ListMemo()
            for stub, state in intact.values():
                blobs.setdefault((stub.channel, stub.version), stub)
                memo.states[(stub.channel, stub.version)] = state
            try:
                tup, lists = self._core.decode_tuple(
                    row, blobs, replies.writes(thread_id, field, writes), memo=memo
                )
            except CorruptDataError:
                if not intact:
                    raise
                intact = {}  # the cache changed meanwhile: read the chains
                continue
            # Lists served from the cache are there already: record only rebuilt ones.
            served = {id(state) for _, state in intact.values()}
            rebuilt = {c: s for c, s in lists.items() if id(s) not in served}
            self._state.remember(self._core, thread_id, ns, rebuilt, blobs)
            return tup

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """List checkpoints newest first, across namespaces unless `config` names one.

        One thread is read a page at a time from its index; ``list(None)``
        merges the threads of the threads index. `filter` matches any
        metadata key, checked on each page's rows before their values are read.
        """
        wanted = validate_filter(filter)
        before_id = checkpoint_id_of(before) if before else None
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
        if config is None:
            source = self._list_merged(wanted, before_id, limit)
        else:
            scope = list_scope(config, before_id)
            if scope is None:
                return
            source = self._list_thread(*scope, wanted, limit)
        if limit == 0:
            return
        remaining = limit
        async with aclosing(source) as items:
            async for tup in items:
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:  # before the source reads another page
                        return

    async def _list_thread(
        self,
        thread_id: str,
        ns: str | None,
        bounds: tuple[str, str],
        wanted: dict[str, Any],
        limit: int | None,
    ) -> AsyncGenerator[CheckpointTuple, None]:
        """List one thread's checkpoints in a lex range of its index, a page at a time."""
        upper, lower = bounds
        keys = self._layout.thread_keys(thread_id)
        ttl = self._retention.read_ttl_ms
        reader = PageDecoder(self._core, thread_id)
        yielded = 0
        while True:
            count = self._page
            if limit is not None and not wanted:
                count = max(1, min(count, limit - yielded))
            have = reader.held if not wanted else []
            _, last, fields, values, writes, pairs = await self._eval(
                PAGE, keys,
                [ttl, upper, lower, count, "1" if ns is None else "0", "0" if wanted else "1",
                 len(have), *have],
            )  # fmt: skip
            rows = [decode_row(thread_id, f, v) for f, v in zip(fields, values, strict=True) if v]
            if wanted:
                rows = [r for r in rows if self._matches(r, wanted)]
                writes, pairs = [], []
                if rows:
                    have = reader.held
                    _, writes, pairs = await self._eval(
                        FETCH, keys,
                        [ttl, "0", len(have), *have,
                         *(row_field(r.checkpoint_ns, r.checkpoint_id) for r in rows)],
                    )  # fmt: skip
            else:
                writes = [w for w, v in zip(writes, values, strict=True) if v]
            reader.add(pairs)
            for row, row_writes in zip(rows, writes, strict=True):
                yield reader.decode(row, row_writes)
                yielded += 1
            if len(fields) < count:
                return
            upper = "(" + text(last)

    async def _list_merged(
        self, wanted: dict[str, Any], before_id: str | None, limit: int | None
    ) -> AsyncGenerator[CheckpointTuple, None]:
        """List every indexed thread's checkpoints, merged newest first.

        Threads are taken from the threads index newest first (`IndexWalk`), a
        few at a time: a checkpoint is handed out once no thread still unread
        can hold a newer one.
        """
        upper, lower = cross_range(before_id)
        ttl = self._retention.read_ttl_ms
        walk = IndexWalk(self._layout.buckets())
        # The first page of each thread: no more than `limit` rows can be needed.
        first = self._page if limit is None or wanted else max(1, min(limit, self._page))
        step = _BATCH if limit is None else max(1, min(limit, _BATCH))  # threads per read
        cursors: dict[str, ThreadCursor] = {}
        heap: builtins.list[Newest] = []
        bound: float | None = math.inf  # nothing read yet
        yielded = 0
        while True:
            size = self._page if limit is None else max(1, min(self._page, limit - yielded))
            batch: builtins.list[CheckpointRow] = []
            while len(batch) < size:
                if bound is not None and (
                    not heap or (floor := id_floor(bound)) is None or heap[0].checkpoint_id < floor
                ):  # a thread not read yet may hold a newer checkpoint than the heap's
                    await self._read_index(walk, step)
                    taken = walk.take(step)
                    replies = await self._eval_many(
                        PAGE,
                        [(self._layout.thread_keys(t), [ttl, upper, lower, first, "1", "0", 0])
                         for t, _, _ in taken],
                    )  # fmt: skip
                    for (thread_id, bucket, score), reply in zip(taken, replies, strict=True):
                        if not reply[0]:
                            await self._unindex(thread_id, bucket, score)
                            continue
                        cursor = cursors[thread_id] = ThreadCursor(
                            thread_id, len(cursors), self._core
                        )
                        cursor.fill(reply, first)
                        if (head := cursor.head()) is not None:
                            heapq.heappush(heap, head)
                    bound = walk.bound()
                    continue
                if not heap:
                    break
                cursor = cursors[heapq.heappop(heap).thread_id]
                row = cursor.pop()
                if not wanted or self._matches(row, wanted):
                    batch.append(row)
                if not cursor.rows and cursor.more:
                    keys = self._layout.thread_keys(cursor.thread_id)
                    args = [ttl, cursor.upper, lower, self._page, "1", "0", 0]
                    cursor.fill(await self._eval(PAGE, keys, args), self._page)
                if (head := cursor.head()) is not None:
                    heapq.heappush(heap, head)
            by_thread: dict[str, builtins.list[CheckpointRow]] = {}
            for row in batch:
                by_thread.setdefault(row.thread_id, []).append(row)
            calls: builtins.list[Call] = []
            for thread_id, rows in by_thread.items():
                have = cursors[thread_id].reader.held
                fields = [row_field(r.checkpoint_ns, r.checkpoint_id) for r in rows]
                keys = self._layout.thread_keys(thread_id)
                calls.append((keys, [ttl, "0", len(have), *have, *fields]))
            fetched: dict[tuple[str, str, str], Any] = {}
            replies = await self._eval_many(FETCH, calls)
            for (thread_id, rows), (_, writes, pairs) in zip(
                by_thread.items(), replies, strict=True
            ):
                cursors[thread_id].reader.add(pairs)
                for row, row_writes in zip(rows, writes, strict=True):
                    fetched[(thread_id, row.checkpoint_ns, row.checkpoint_id)] = row_writes
            for row in batch:
                key = (row.thread_id, row.checkpoint_ns, row.checkpoint_id)
                yield cursors[row.thread_id].reader.decode(row, fetched[key])
                yielded += 1
            if not heap and bound is None:
                return

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        """Walk the parent chain once, server-side, for all `channels`."""
        if not channels:
            return {}
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        wanted = list(dict.fromkeys([escape(_channel(c)) for c in channels]))
        reply = await self._eval(
            HISTORY, self._layout.thread_keys(thread_id),
            [escape(ns), escape(checkpoint_id or ""), *wanted],
        )  # fmt: skip
        return delta_history_of(self._core, thread_id, ns, reply, channels)

    async def alist_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> builtins.list[ThreadInfo]:
        """Summarise threads newest first, optionally filtered on their latest metadata.

        Threads are read from the threads index newest first (`IndexWalk`), a
        batch at a time, until `limit` summaries are certain to be the newest.
        """
        wanted = validate_filter(filter)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
        walk = IndexWalk(self._layout.buckets())
        step = _BATCH if limit is None else max(1, min(limit, _BATCH))  # threads per read
        ready: builtins.list[ThreadInfo] = []  # read, not handed out yet
        infos: builtins.list[ThreadInfo] = []
        while limit is None or len(infos) < limit:
            await self._read_index(walk, step)
            taken = walk.take(step)
            replies = await self._eval_many(
                THREAD_INFO, [(self._layout.thread_keys(t), []) for t, _, _ in taken]
            )
            for (thread_id, bucket, score), reply in zip(taken, replies, strict=True):
                if reply is None:  # the thread expired or was deleted
                    await self._unindex(thread_id, bucket, score)
                elif (info := thread_info_of(self._core, thread_id, reply)) is not None and (
                    not wanted or metadata_matches(info.metadata, wanted)
                ):
                    ready.append(info)
            bound = walk.bound()
            # Newest last; handed out once no unread thread can be newer.
            ready.sort(key=lambda i: (i.updated_at, i.thread_id))
            floor = ts_floor(bound) if bound is not None else None
            while ready and (bound is None or (floor is not None and ready[-1].updated_at > floor)):
                infos.append(ready.pop())
                if limit is not None and len(infos) >= limit:
                    break
            if bound is None:
                break
            if wanted:  # most threads may not match: read more at a time
                step = min(_BATCH, step * 2)
        return infos

    # -- writes ------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; only channels in `new_versions` get new values.

        Idempotent: putting the same checkpoint again stores the same rows.

        Raises:
            WriteConflictError: with ``single_writer=True``, a newer checkpoint
                than the put's parent is stored (nothing of the put is).
        """
        plan = self._core.plan_put(config, checkpoint, metadata, new_versions)
        row = plan.checkpoint
        thread_id, ns = row.thread_id, row.checkpoint_ns
        keys = self._layout.thread_keys(thread_id)
        score = score_arg(put_score([row]))
        count = self._retention.keep_last is not None
        for _ in range(_PUT_ATTEMPTS):
            args = put_args(
                plan, self._retention.ttl_ms, count=count, guard=self.single_writer, score=score
            )
            reply = await self._put(keys, thread_id, score, args)
            if reply[0] == _STORED:
                break
            if reply[0] == _REFUSED:
                refuse(row, reply[1])
            # A delta's base was pruned meanwhile: store those lists whole.
            self._core.rebase_missing(plan, missing_bases(reply[1]))
        else:  # pragma: no cover - a rebased plan has no missing bases
            raise CorruptDataError(f"could not store checkpoint {row.checkpoint_id!r}")
        if reply[1] and self._cluster:
            await self._touch(thread_id, score)
        self._replies.learn_put(args, plan)
        self._state.remember(
            self._core, thread_id, ns, plan.learned, {(b.channel, b.version): b for b in plan.blobs}
        )
        if self._retention.should_trim(int(reply[2])):
            await self._drop_unkept(thread_id, ns)
        return plan.config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes atomically: ordinary ones first-wins, special ones replaced."""
        rows = self._core.plan_writes(config, writes, task_id, task_path)
        if not rows:
            return
        first = rows[0]
        field = row_field(first.checkpoint_ns, first.checkpoint_id)
        kept = kept_writes(rows)
        records = encode_writes(kept)
        await self._eval(
            WRITES, self._layout.thread_keys(first.thread_id),
            [self._retention.ttl_ms, field, records],
        )  # fmt: skip
        # What a read finds if these are the checkpoint's only writes.
        self._replies.learn_writes(field, records, kept)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread."""
        thread_id = str(thread_id)
        if not _storable(thread_id):
            return  # no thread can be stored under it
        await self._command("delete_thread", "DEL", *self._layout.thread_keys(thread_id))
        await self._command("delete_thread", "ZREM", self._layout.bucket(thread_id), thread_id)
        self._forget([thread_id])

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and writes) made by the given runs, in every thread."""
        # Bytes, as `encode_row` packs run ids: lone surrogates match, not fail.
        runs = [str(r).encode("utf-8", "surrogatepass") for r in run_ids]
        if not runs:
            return
        entries = await self._index_entries()
        counts = await self._eval_many(
            DROP_RUNS, [(self._layout.thread_keys(t), runs) for t, _, _ in entries]
        )
        self._forget([t for (t, _, _), n in zip(entries, counts, strict=True) if n])

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``keep_latest`` per namespace (DeltaChannel-safe) or ``delete``."""
        check_strategy(strategy)
        thread_ids = [t for t in map(str, thread_ids) if _storable(t)]
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                await self._drop_unkept(thread_id, None)
        self._forget(thread_ids)

    async def _drop_unkept(self, thread_id: str, ns: str | None) -> None:
        """Delete the checkpoints a prune (ns None) or ``keep_last`` (ns given) does not keep."""
        keys = self._layout.thread_keys(thread_id)
        reply = await self._eval(ROWS, keys, ["0" if ns is None else "1", escape(ns or "")])
        rows, stubs = rows_with_kinds(thread_id, *reply)
        doomed = unkept_fields(
            self._core, rows, stubs, None if ns is None else self._retention.keep_last
        )
        if doomed:
            # The script recomputes which values are still referenced, atomically.
            await self._eval(DROP, keys, doomed)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread to another thread id.

        Raises:
            ConfigurationError: the target id is not usable (`check_thread_id`).
        """
        target = check_thread_id(target_thread_id)
        source = str(source_thread_id)
        if not _storable(source):
            return  # no thread can be stored under it: nothing to copy
        rows, blobs, writes = dump_rows(
            source, await self._eval(DUMP, self._layout.thread_keys(source), [])
        )
        if rows:
            await self._restore(rows, blobs, writes, target, exclusive=False)

    async def afork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        """Copy a checkpoint and its ancestors into a new thread; return the fork's config.

        Raises:
            ConfigurationError: the checkpoint does not exist, or the new thread does,
                or its id is not usable (`check_thread_id`).
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        new_thread_id = check_thread_id(new_thread_id)
        rows, blobs, writes = dump_rows(
            thread_id, await self._eval(DUMP, self._layout.thread_keys(thread_id), [])
        )
        in_ns = {r.checkpoint_id: r for r in rows if r.checkpoint_ns == ns}
        if checkpoint_id is None and in_ns:
            checkpoint_id = max(in_ns)
        target = in_ns.get(checkpoint_id) if checkpoint_id else None
        if target is None:
            raise ConfigurationError(
                f"no checkpoint {checkpoint_id!r} in thread {thread_id!r} to fork"
            )
        selected = fork_selection(rows, target)
        if not await self._restore(selected, blobs, writes, new_thread_id, exclusive=True):
            raise ConfigurationError(f"cannot fork into thread {new_thread_id!r}: it exists")
        return config_for(new_thread_id, ns, target.checkpoint_id)

    async def _restore(
        self,
        rows: Sequence[CheckpointRow],
        blobs: dict[str, dict[BlobKey, BlobRow]],
        writes: dict[str, builtins.list[WriteRow]],
        target: str,
        *,
        exclusive: bool,
    ) -> bool:
        """Write copies of `rows` (with their live values and writes) under `target`."""
        score = score_arg(put_score(builtins.list(rows)))
        await self._command(
            "indexing a thread", "ZADD", self._layout.bucket(target), "GT", score, target
        )
        reply = await self._eval(
            RESTORE, self._layout.thread_keys(target),
            [self._retention.ttl_ms, "1" if exclusive else "0",
             *restore_args(self._core, rows, blobs, writes, target)],
        )  # fmt: skip
        if not reply[0]:
            return False
        if reply[1]:
            await self._touch(target, score)
        return True

    # -- measurement -------------------------------------------------------------

    async def astorage_bytes(self, thread_id: str | None = None) -> int:
        """Return the bytes stored for one thread (or all), counted as the memory saver does."""
        if thread_id is not None:
            thread_ids = [str(thread_id)]
        else:
            thread_ids = [t for t, _, _ in await self._index_entries()]
        replies = await self._eval_many(
            DUMP, [(self._layout.thread_keys(t), []) for t in thread_ids]
        )
        return sum(
            storage_bytes_of(*dump_rows(t, r)) for t, r in zip(thread_ids, replies, strict=True)
        )

    async def amemory_usage(self, thread_id: str) -> int:
        """Return the bytes Redis uses for a thread's keys (``MEMORY USAGE``, summed)."""
        return int(await self._eval(MEMORY, self._layout.thread_keys(str(thread_id)), []))

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)

    # -- plumbing ----------------------------------------------------------------

    def _matches(self, row: CheckpointRow, wanted: dict[str, Any]) -> bool:
        return metadata_matches(self._core.decode_metadata(row.metadata), wanted)

    def _forget(self, thread_ids: Sequence[str]) -> None:
        self._core.forget(thread_ids)
        self._state.forget(thread_ids)

    async def _put(
        self, keys: Sequence[str], thread_id: str, score: str, args: Sequence[Any]
    ) -> Any:
        """Run the PUT script, raising the thread's threads-index score in the same round trip."""
        bucket = self._layout.bucket(thread_id)
        if not self._cluster:
            return await self._eval(PUT, [*keys, bucket], args)
        if not self._state.announced(thread_id):
            # Indexed before its first write, so a crash in between cannot leave
            # the thread stored but unlisted.
            await self._command("indexing a thread", "ZADD", bucket, "GT", score, thread_id)
            self._state.mark_announced(thread_id)
            return await self._eval(PUT, keys, args)
        return await self._eval_after(("ZADD", bucket, "GT", score, thread_id), PUT, keys, args)

    async def _touch(self, thread_id: str, score: str) -> None:
        """Index a thread a write just created, changing its score (which `_unindex` checks)."""
        await self._eval(TOUCH, [self._layout.bucket(thread_id)], [thread_id, score])

    async def _unindex(self, thread_id: str, bucket: str, score: float) -> None:
        """Drop the index entry of a thread whose keys are gone (expired or deleted)."""
        self._forget([thread_id])
        keys = [bucket] if self._cluster else [bucket, self._layout.thread_keys(thread_id)[1]]
        await self._eval(UNINDEX, keys, [thread_id, repr(score)])

    async def _read_index(self, walk: IndexWalk, count: int) -> None:
        """Read the next `count` entries of each bucket `walk` needs, in one pipeline."""
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._read_index(walk, count))
        requests = walk.requests(count)
        if not requests:
            return None
        try:
            async with self._io.pipeline(transaction=False) as pipe:
                for key, top, low, offset, n in requests:
                    pipe.zrevrangebyscore(key, top, low, start=offset, num=n, withscores=True)
                replies = await pipe.execute()
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, "reading the threads index") from exc
        for request, reply in zip(requests, replies, strict=True):
            walk.fill(request, reply)
        return None

    async def _index_entries(self) -> builtins.list[tuple[str, str, float]]:
        """Return (thread id, bucket, score) of every indexed thread."""
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._index_entries())
        buckets = self._layout.buckets()
        try:
            async with self._io.pipeline(transaction=False) as pipe:
                for key in buckets:
                    pipe.zrange(key, 0, -1, withscores=True)
                replies = await pipe.execute()
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, "reading the threads index") from exc
        return [
            (text(member), key, float(score))
            for key, reply in zip(buckets, replies, strict=True)
            for member, score in reply
        ]

    async def _command(self, action: str, *args: Any) -> Any:
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._command(action, *args))
        try:
            return await self._io.execute_command(*args)
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, action) from exc

    async def _eval(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script: EVALSHA, and EVAL when the server does not have it cached."""
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._eval(script, keys, args))
        try:
            try:
                return await self._io.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *args
                )
            except NoScriptError:
                return await self._io.execute_command("EVAL", script.body, len(keys), *keys, *args)
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, script.name) from exc

    async def _eval_after(
        self, command: Sequence[Any], script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Send a command, then a script, in one pipeline (on a cluster, to their own nodes)."""
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._eval_after(command, script, keys, args))
        try:
            async with self._io.pipeline(transaction=False) as pipe:
                pipe.execute_command(*command)
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                done, reply = await pipe.execute(raise_on_error=False)
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, script.name) from exc
        if isinstance(reply, NoScriptError):
            reply = await self._eval(script, keys, args)
        for outcome in (done, reply):
            if isinstance(outcome, BaseException):
                raise translate(outcome, script.name) from outcome
        return reply

    async def _eval_many(self, script: Script, calls: Sequence[Call]) -> builtins.list[Any]:
        """Run a script once per call, pipelined (per node on a cluster).

        Calls answered NOSCRIPT (nodes that lost or never had the script) are
        sent again in one more pipeline, with the script's body.
        """
        if (loop := self._foreign_loop()) is not None:  # async-only
            return await _loops.forward(loop, self._eval_many(script, calls))
        results: builtins.list[Any] = []
        for start in range(0, len(calls), _BATCH):
            chunk = calls[start : start + _BATCH]
            replies = await self._pipeline("EVALSHA", script, chunk)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                again = await self._pipeline("EVAL", script, [chunk[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, BaseException):
                    raise translate(reply, script.name) from reply
            results += replies
        return results

    async def _pipeline(
        self, command: str, script: Script, calls: Sequence[Call]
    ) -> builtins.list[Any]:
        """Send EVALSHA or EVAL calls in one pipeline; errors come back as values."""
        source = script.sha if command == "EVALSHA" else script.body
        try:
            async with self._io.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.execute_command(command, source, len(keys), *keys, *args)
                return builtins.list(await pipe.execute(raise_on_error=False))
        except (RedisError, RedisClusterException) as exc:
            raise translate(exc, script.name) from exc

    def _foreign_loop(self) -> asyncio.AbstractEventLoop | None:  # async-only
        """Return the saver's loop when called from another running loop (bind it first)."""
        running = asyncio.get_running_loop()
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            self.loop = running
            return None
        return None if loop is running else loop


async def _connect(
    url: str, cluster: bool | None, kwargs: dict[str, Any]
) -> AsyncRedis | AsyncRedisCluster:
    """Open a client for `url`, asking the server whether it is a cluster node if need be."""
    if kwargs.get("decode_responses"):
        raise ConfigurationError("decode_responses=True is not supported: checkpoints are binary")
    # redis-py clients made by from_url do not retry; ours ride out a restart.
    kwargs = {"retry": async_retry(), **kwargs}
    try:
        if cluster:
            return AsyncRedisCluster.from_url(url, **kwargs)
        # A blocking pool: past max_connections (default 50), commands wait for a
        # free connection instead of failing, as many concurrent graphs need.
        client = AsyncRedis.from_pool(AsyncBlockingConnectionPool.from_url(url, **kwargs))
        if cluster is None:
            untyped: Any = client
            try:
                info = await untyped.execute_command("INFO", "cluster")
            except BaseException:
                await client.aclose()
                raise
            if info.get("cluster_enabled"):
                await client.aclose()
                return AsyncRedisCluster.from_url(url, **kwargs)
        return client
    except (RedisError, RedisClusterException) as exc:
        raise translate(exc, f"connecting to {url!r}") from exc
