"""`MemoryCheckpointer`: the storage core over plain dicts, for sync and async use.

It stores exactly the rows a database backend would (serialized bytes, list
deltas, shared blobs), so it is the reference the persistent backends are
tested against and its storage size can be measured with `storage_bytes`.
One lock guards the dicts; every operation is short and does no I/O, so the
async methods (from `SyncBridge`) call the sync ones inline.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
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

from checkpointkit.checkpointers._bridge import SyncBridge
from checkpointkit.checkpointers._rows import BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import (
    BlobKey,
    CoreSaverMixin,
    ListMemo,
    StorageCore,
    ThreadInfo,
    check_single_writer,
    check_strategy,
    check_thread_id,
    checkpoint_id_of,
    checkpoint_ns_of,
    config_for,
    fork_selection,
    metadata_matches,
    moved_checkpoint,
    next_version,
    thread_id_of,
    validate_filter,
)
from checkpointkit.errors import ConfigurationError
from checkpointkit.serde import SerializerProtocol, default_serializer

__all__ = ["MemoryCheckpointer"]


@dataclass
class _Thread:
    checkpoints: dict[str, dict[str, CheckpointRow]] = field(default_factory=dict)  # ns -> id
    blobs: dict[str, dict[BlobKey, BlobRow]] = field(default_factory=dict)  # ns -> key
    writes: dict[tuple[str, str], dict[tuple[str, int], WriteRow]] = field(default_factory=dict)

    def rows(self) -> list[CheckpointRow]:
        return [row for by_id in self.checkpoints.values() for row in by_id.values()]


class MemoryCheckpointer(
    CoreSaverMixin,
    SyncBridge,
    BaseCheckpointSaver[str],
    AbstractContextManager["MemoryCheckpointer"],
    AbstractAsyncContextManager["MemoryCheckpointer"],
):
    """A checkpointer that keeps everything in this process's memory.

    Use it in tests and notebooks, or as a fast cache in front of nothing: its
    content is gone when the process ends. It serves sync and async graphs.

    Args:
        serde: Serializer for channel values and writes (default: checkpointkit's
            safe msgpack serializer).
        delta_lists: Store list channels as deltas (default True).
        verify_items: Also notice list items edited in place and put again
            without being written by a task (a pass over the list per step).
        single_writer: Refuse, with `WriteConflictError`, a put that does not
            build on the newest checkpoint of its thread (another writer got
            there first); see `check_single_writer`.

    Example:
        ```python
        from checkpointkit import MemoryCheckpointer

        graph = builder.compile(checkpointer=MemoryCheckpointer())
        graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "1"}})
        ```
    """

    offload_io = False  # no I/O: the async methods run the sync ones inline

    def __init__(
        self,
        *,
        serde: SerializerProtocol | None = None,
        delta_lists: bool = True,
        verify_items: bool = False,
        single_writer: bool = False,
    ) -> None:
        super().__init__(serde=serde or default_serializer())
        self.single_writer = single_writer
        self._core = StorageCore(self.serde, delta_lists=delta_lists, verify_items=verify_items)
        self._threads: dict[str, _Thread] = {}
        self._lock = threading.RLock()

    def __enter__(self) -> MemoryCheckpointer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> MemoryCheckpointer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    # -- reads -------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint named by `config`, or the thread's latest one."""
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        with self._lock:
            store = self._threads.get(thread_id)
            by_id = store.checkpoints.get(ns) if store else None
            if not store or not by_id:
                return None
            if checkpoint_id is None:
                checkpoint_id = max(by_id)
            row = by_id.get(checkpoint_id)
            if row is None:
                return None
            # Stored rows are never mutated, only replaced: no copy needed.
            blobs = store.blobs.get(ns, {})
            writes = list(store.writes.get((ns, checkpoint_id), {}).values())
        tup, lists = self._core.decode_tuple(row, blobs, writes)
        self._core.remember(thread_id, ns, lists)
        return tup

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first, across namespaces unless `config` names one."""
        wanted = validate_filter(filter)
        before_id = checkpoint_id_of(before) if before else None
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
        thread_ids: list[str] | None = None
        ns: str | None = None
        only_id: str | None = None
        if config is not None:
            thread_ids = [thread_id_of(config)]
            if config["configurable"].get("checkpoint_ns") is not None:
                ns = checkpoint_ns_of(config)
            only_id = checkpoint_id_of(config)
        with self._lock:
            stores = {
                tid: self._threads[tid]
                for tid in (thread_ids if thread_ids is not None else list(self._threads))
                if tid in self._threads
            }
            rows = [
                row
                for store in stores.values()
                for row in store.rows()
                if (ns is None or row.checkpoint_ns == ns)
                and (only_id is None or row.checkpoint_id == only_id)
                and (before_id is None or row.checkpoint_id < before_id)
            ]
        rows.sort(key=lambda r: r.checkpoint_id, reverse=True)
        memos: dict[tuple[str, str], ListMemo] = {}
        remaining = limit
        for row in rows:
            if remaining is not None and remaining <= 0:
                return
            if wanted and not metadata_matches(self._core.decode_metadata(row.metadata), wanted):
                continue
            with self._lock:
                store = stores[row.thread_id]
                blobs = store.blobs.get(row.checkpoint_ns, {})
                writes = list(store.writes.get((row.checkpoint_ns, row.checkpoint_id), {}).values())
            memo = memos.setdefault((row.thread_id, row.checkpoint_ns), ListMemo())
            tup, _ = self._core.decode_tuple(row, blobs, writes, memo=memo)
            if remaining is not None:
                remaining -= 1
            yield tup

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Walk the parent chain once for all `channels` (see LangGraph's contract)."""
        if not channels:
            return {}
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        with self._lock:
            store = self._threads.get(thread_id)
            by_id = dict(store.checkpoints.get(ns, {})) if store else {}
            blobs = store.blobs.get(ns, {}) if store else {}
            if checkpoint_id is None and by_id:
                checkpoint_id = max(by_id)
            ancestors: list[CheckpointRow] = []
            target = by_id.get(checkpoint_id) if checkpoint_id else None
            seen: set[str] = set()
            parent = target.parent_id if target else None
            while parent and parent in by_id and parent not in seen:
                seen.add(parent)
                ancestors.append(by_id[parent])
                parent = by_id[parent].parent_id
            steps = self._core.delta_history_walk(ancestors, blobs, channels)
            writes = {
                row.checkpoint_id: list(store.writes.get((ns, row.checkpoint_id), {}).values())
                for row, _, _ in steps
            } if store else {}  # fmt: skip
        return self._core.delta_history(steps, blobs, writes, channels)

    def list_threads(
        self, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> builtins.list[ThreadInfo]:
        """Summarise threads newest first, optionally filtered on their latest metadata."""
        wanted = validate_filter(filter)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
        with self._lock:  # (first, last, count) of each thread's root namespace
            roots = [
                (by_id[min(by_id)], by_id[max(by_id)], len(by_id))
                for store in self._threads.values()
                if (by_id := store.checkpoints.get(""))
            ]
        roots.sort(key=lambda root: (root[1].ts, root[1].thread_id), reverse=True)
        infos: builtins.list[ThreadInfo] = []
        for first, last, count in roots:  # metadata decoded only until the limit
            if limit is not None and len(infos) >= limit:
                break
            metadata = self._core.decode_metadata(last.metadata)
            if not wanted or metadata_matches(metadata, wanted):
                infos.append(ThreadInfo(last.thread_id, metadata, count, first.ts, last.ts))
        return infos

    # -- writes ------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; only channels in `new_versions` get new values."""
        plan = self._core.plan_put(config, checkpoint, metadata, new_versions)
        row = plan.checkpoint
        with self._lock:
            store = self._threads.setdefault(row.thread_id, _Thread())
            if self.single_writer:
                stored = store.checkpoints.get(row.checkpoint_ns)
                check_single_writer(row, max(stored) if stored else None)
            blobs = store.blobs.setdefault(row.checkpoint_ns, {})
            missing = {key for key in plan.delta_bases if key not in blobs}
            if missing:
                self._core.rebase_missing(plan, missing)
            for blob in plan.blobs:
                blobs[(blob.channel, blob.version)] = blob
            store.checkpoints.setdefault(row.checkpoint_ns, {})[row.checkpoint_id] = row
        self._core.remember(row.thread_id, row.checkpoint_ns, plan.learned)
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
        with self._lock:
            store = self._threads.setdefault(rows[0].thread_id, _Thread())
            stored = store.writes.setdefault((rows[0].checkpoint_ns, rows[0].checkpoint_id), {})
            for w in rows:
                if w.idx < 0 or (w.task_id, w.idx) not in stored:
                    stored[(w.task_id, w.idx)] = w

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread."""
        with self._lock:
            self._threads.pop(str(thread_id), None)
        self._core.forget([str(thread_id)])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by the given runs."""
        doomed_runs = {str(r) for r in run_ids}
        if not doomed_runs:
            return
        touched = []
        with self._lock:
            for thread_id, store in self._threads.items():
                doomed = [r for r in store.rows() if r.run_id in doomed_runs]
                if doomed:
                    self._drop(store, doomed)
                    touched.append(thread_id)
        self._core.forget(touched)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``keep_latest`` per namespace (DeltaChannel-safe) or ``delete``."""
        check_strategy(strategy)
        with self._lock:
            for thread_id in map(str, thread_ids):
                store = self._threads.get(thread_id)
                if store is None:
                    continue
                doomed = []
                for ns, by_id in store.checkpoints.items():
                    keep = self._core.keep_for_prune(
                        list(by_id.values()), store.blobs.get(ns, {}), strategy
                    )
                    doomed += [row for cid, row in by_id.items() if cid not in keep]
                self._drop(store, doomed)
        self._core.forget(map(str, thread_ids))

    def _drop(self, store: _Thread, doomed: Sequence[CheckpointRow]) -> None:
        """Remove rows, their writes, and the values no surviving checkpoint needs."""
        for row in doomed:
            store.checkpoints[row.checkpoint_ns].pop(row.checkpoint_id, None)
            store.writes.pop((row.checkpoint_ns, row.checkpoint_id), None)
        for ns in {row.checkpoint_ns for row in doomed}:
            survivors = store.checkpoints.get(ns, {})
            blobs = store.blobs.get(ns, {})
            live = self._core.live_blobs(survivors.values(), blobs.values())
            store.blobs[ns] = {k: b for k, b in blobs.items() if k in live}
            if not survivors:
                store.checkpoints.pop(ns, None)
                store.blobs.pop(ns, None)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread to another thread id.

        Raises:
            ConfigurationError: the target id is not usable (`check_thread_id`).
        """
        target_id = check_thread_id(target_thread_id)
        with self._lock:
            source = self._threads.get(str(source_thread_id))
            if source is None:
                return
            self._copy_rows(source, source.rows(), target_id)

    def fork_thread(self, config: RunnableConfig, new_thread_id: str) -> RunnableConfig:
        """Copy a checkpoint and its ancestors into a new thread; return the fork's config.

        Raises:
            ConfigurationError: the checkpoint does not exist, the new thread does, or
                its id is not usable (`check_thread_id`).
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        new_thread_id = check_thread_id(new_thread_id)
        with self._lock:
            if new_thread_id in self._threads:
                raise ConfigurationError(f"cannot fork into thread {new_thread_id!r}: it exists")
            source = self._threads.get(thread_id)
            by_id = source.checkpoints.get(ns, {}) if source else {}
            if checkpoint_id is None and by_id:
                checkpoint_id = max(by_id)
            target = by_id.get(checkpoint_id) if checkpoint_id else None
            if source is None or target is None:
                raise ConfigurationError(
                    f"no checkpoint {checkpoint_id!r} in thread {thread_id!r} to fork"
                )
            self._copy_rows(source, fork_selection(source.rows(), target), new_thread_id)
        return config_for(new_thread_id, ns, target.checkpoint_id)

    def _copy_rows(self, source: _Thread, rows: Sequence[CheckpointRow], target_id: str) -> None:
        target = self._threads.setdefault(target_id, _Thread())
        core = self._core
        for ns in {row.checkpoint_ns for row in rows}:
            in_ns = [row for row in rows if row.checkpoint_ns == ns]
            blobs = source.blobs.get(ns, {})
            live = core.live_blobs(in_ns, blobs.values())
            target_blobs = target.blobs.setdefault(ns, {})
            for key in live:
                if key in blobs:
                    target_blobs[key] = core.recontext_blob(blobs[key], target_id)
            for row in in_ns:
                target.checkpoints.setdefault(ns, {})[row.checkpoint_id] = moved_checkpoint(
                    row, target_id
                )
                for wkey, w in source.writes.get((ns, row.checkpoint_id), {}).items():
                    target.writes.setdefault((ns, row.checkpoint_id), {})[wkey] = (
                        core.recontext_write(w, target_id)
                    )

    # -- measurement -------------------------------------------------------------

    def storage_bytes(self, thread_id: str | None = None) -> int:
        """Return the bytes held for one thread (or all): payloads, rows and keys."""
        with self._lock:
            stores = (
                [self._threads[thread_id]] if thread_id is not None and thread_id in self._threads
                else [] if thread_id is not None else list(self._threads.values())
            )  # fmt: skip
            total = 0
            for store in stores:
                for row in store.rows():
                    total += len(row.skeleton) + len(row.metadata.encode()) + 3 * 36
                for blobs in store.blobs.values():
                    for b in blobs.values():
                        total += len(b.payload or b"") + len(b.ops or b"")
                        total += len(b.channel) + len(b.version) + len(b.base or "") + 16
                for writes in store.writes.values():
                    for w in writes.values():
                        total += len(w.payload) + len(w.channel) + len(w.task_id) + 16
            return total

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)
