"""The I/O-free storage core every checkpointer shares.

`StorageCore` turns the arguments of `put` / `put_writes` into rows
(`_rows`), and stored rows back into LangGraph `CheckpointTuple`s. Backends
only move rows: a database backend runs the queries, the memory backend keeps
dicts. Everything that decides *what* is stored lives here, once:

* config parsing and validation (typed errors for a missing ``thread_id``, a
  malformed config or filter);
* channel values stored once per (thread, namespace, channel, version), and
  list values stored as deltas against an earlier version (`_listdelta`),
  with a small per-process cache of the latest list of each channel so a put
  costs only what changed; the cache is filled on writes and on ``get_tuple``;
* decoding: rebuilding lists from their delta chains, ordering pending writes
  by `writes_sort_key`, metadata filters; plain values, skeletons and metadata
  already decoded (or just written) are copied from a per-process cache keyed
  by their stored bytes (`_decoded`) instead of being decoded again;
* reference-aware garbage collection and ``DeltaChannel``-safe pruning;
* ``get_delta_channel_history`` answered from rows of the ancestor chain.

Config parsing (`_config`) and thread-level helpers (`_threads`) live in
their own modules and are re-exported here, so backends import from one place.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointkit.checkpointers._config import (
    check_text,
    check_thread_id,
    checkpoint_id_of,
    checkpoint_ns_of,
    config_for,
    metadata_matches,
    thread_id_of,
    validate_filter,
)
from checkpointkit.checkpointers._decoded import DecodedCaches, MetadataDecoder, fresh
from checkpointkit.checkpointers._listdelta import (
    ListState,
    apply_pieces,
    diff_lists,
    fingerprints,
    is_unique_version,
    needs_snapshot,
)
from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers._skeleton import decode_skeleton, encode_skeleton
from checkpointkit.checkpointers._threads import (
    PRUNE_STRATEGIES,
    ThreadInfo,
    check_strategy,
    fork_selection,
    moved_checkpoint,
    next_version,
    thread_info,
)
from checkpointkit.errors import (
    CheckpointKitError,
    ConfigurationError,
    CorruptDataError,
    SerializationError,
    WriteConflictError,
)
from checkpointkit.serde.base import SerializerProtocol, dumps_in, is_contextual, loads_in, place
from checkpointkit.serde.msgpack import MsgpackSerializer

__all__ = [
    "PRUNE_STRATEGIES",
    "BlobKey",
    "CoreSaverMixin",
    "ListMemo",
    "PutPlan",
    "StorageCore",
    "ThreadInfo",
    "check_single_writer",
    "check_strategy",
    "check_text",
    "check_thread_id",
    "checkpoint_id_of",
    "checkpoint_ns_of",
    "config_for",
    "fork_selection",
    "metadata_matches",
    "moved_checkpoint",
    "next_version",
    "thread_id_of",
    "thread_info",
    "validate_filter",
]

BlobKey = tuple[str, str]  # (channel, version)
_VERSIONS_CACHED = 4  # list versions kept per channel in the per-process cache
_PINNED_GROUPS = 64  # (thread, namespace) groups of pinned lists kept per OS thread


# --- put planning ---------------------------------------------------------------


@dataclass(slots=True)
class PutPlan:
    """The rows one ``put`` stores, and what the cache learns once they are stored."""

    checkpoint: CheckpointRow
    blobs: list[BlobRow]
    config: RunnableConfig  # what `put` returns
    learned: dict[str, ListState]  # channel -> list version stored by this put
    versions: dict[str, str]  # the checkpoint's blob keys: channel -> version

    @property
    def delta_bases(self) -> set[BlobKey]:
        """The blob keys this put's deltas apply to; they must exist when it commits."""
        return {
            (b.channel, b.base)
            for b in self.blobs
            if b.kind is BlobKind.LIST_DELTA and b.base is not None
        }


@dataclass(slots=True)
class ListMemo:
    """Lists rebuilt and payloads decoded during one read (shared by a list's pages)."""

    states: dict[BlobKey, ListState] = field(default_factory=dict)
    payloads: dict[BlobKey, list[Any]] = field(default_factory=dict)
    # versions known to be a prefix of a rebuilt list: (its items, (cost, edits))
    prefixes: dict[BlobKey, tuple[list[Any], tuple[int, int]]] = field(default_factory=dict)

    def seed_prefixes(
        self, state: ListState, blob: BlobRow, blobs: Mapping[BlobKey, BlobRow]
    ) -> None:
        """Register the append-ancestors of a version known whole (from the cache).

        Only base pointers are followed, no payload is decoded: the older
        versions a ``list`` page reads next are then slices of `state.items`.
        """
        cost, edits = state.cost, state.edits
        step = blob
        while step.kind is BlobKind.LIST_DELTA and step.ops is None and step.base is not None:
            base = blobs.get((step.channel, step.base))
            if base is None or (base.channel, base.version) in self.prefixes:
                return
            cost -= step.length - base.length
            self.prefixes[(base.channel, base.version)] = (state.items, (cost, edits))
            step = base

    def take_prefix(self, key: BlobKey, blob: BlobRow) -> ListState:
        items, (cost, edits) = self.prefixes.pop(key)
        state = ListState(
            blob.version, blob.chain or blob.version, blob.seq, cost, edits,
            items[: blob.length], None,
        )  # fmt: skip
        self.states[key] = state
        return state


def _json_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


# ``json.dumps(..., ensure_ascii=False, default=_json_default)``, its encoder built once.
_metadata_encoder = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode


class StorageCore:
    """Encode puts into rows and decode rows into checkpoint tuples.

    Args:
        serde: The serializer for channel values and writes.
        delta_lists: Store list-valued channels as deltas (the default). Turn
            off to store every version whole, like LangGraph's savers.
        cache_size: How many (thread, namespace, channel) lists to remember
            per process, to compute deltas without reading them back.
        verify_items: Fingerprint every list item on each put and read, to
            notice objects edited in place without being written again (a pass
            over the whole list per step). Off by default: objects a node
            returns are always stored anew, as `put_writes` names them.
        decoded_cache: Keep decoded plain values, skeletons and metadata per
            process, keyed by their stored bytes (`_decoded`). Off: every
            read decodes everything.
    """

    def __init__(
        self,
        serde: SerializerProtocol,
        *,
        delta_lists: bool = True,
        cache_size: int = 4096,
        verify_items: bool = False,
        decoded_cache: bool = True,
    ) -> None:
        if cache_size < 0:
            raise ConfigurationError(f"cache_size must be >= 0, got {cache_size}")
        self.serde = serde
        self.delta_lists = delta_lists
        self._cache_size = cache_size
        self.verify_items = verify_items
        self._contextual = is_contextual(serde)
        # Our own serializer gives plain data back exactly: values it writes
        # are kept as they are put (another serializer's may come back changed).
        self.decoded = DecodedCaches(enabled=decoded_cache, exact=type(serde) is MsgpackSerializer)
        # (thread, ns, channel) -> the latest few list versions, newest last
        self._cache: OrderedDict[tuple[str, str, str], list[ListState]] = OrderedDict()
        self._cache_lock = threading.Lock()
        # ids of objects written (put_writes) since the last put, per (thread, ns)
        self._touched: dict[tuple[str, str], set[int]] = {}
        # Per OS thread: the cached lists `chain_requests` fetched no chain rows
        # for, held until the read decodes them (puts may evict them meanwhile).
        self._pins = threading.local()

    def with_serde(self, serde: SerializerProtocol) -> StorageCore:
        """Return a core with the same options over another serializer (empty cache)."""
        return StorageCore(
            serde,
            delta_lists=self.delta_lists,
            cache_size=self._cache_size,
            verify_items=self.verify_items,
            decoded_cache=self.decoded.enabled,
        )

    # -- serialization at a place ------------------------------------------------

    def _dump(self, value: Any, *where: str | int) -> tuple[str, bytes]:
        """Serialize a value stored at `where` (bound into it only by a contextual serde)."""
        if self._contextual:
            return dumps_in(self.serde, value, place(*where))
        return self.serde.dumps_typed(value)

    def _load(self, data: tuple[str, bytes], *where: str | int) -> Any:
        payload = data[1]
        values = self.decoded.values
        if type(payload) is not bytes or len(payload) > values.max_bytes:
            return self._decode(data, where)
        key = (data[0], payload, *where) if self._contextual else data
        entry = values.entries.get(key)
        if entry is not None:
            return fresh(entry)
        value = self._decode(data, where)
        self.decoded.keep_value(key, value)
        return value

    def _decode(self, data: tuple[str, bytes], where: Sequence[str | int]) -> Any:
        try:
            if self._contextual:
                return loads_in(self.serde, data, place(*where))
            return self.serde.loads_typed(data)
        except CheckpointKitError as exc:
            # Same error type, with the place it was stored at.
            raise type(exc)(f"{exc} (stored at {_describe(where)})") from exc
        except Exception as exc:  # a third-party serde's own failure
            raise CorruptDataError(
                f"cannot decode the value stored at {_describe(where)}: {exc!r}"
            ) from exc

    # -- cache -------------------------------------------------------------------

    def _cached(self, key: tuple[str, str, str], version: str | None = None) -> ListState | None:
        """Return the newest cached version of a list channel, or the given one."""
        with self._cache_lock:
            states = self._cache.get(key)
            if not states:
                return None
            self._cache.move_to_end(key)
            if version is None:
                return states[-1]
            return next((s for s in reversed(states) if s.version == version), None)

    def remember(
        self, thread_id: str, checkpoint_ns: str, learned: Mapping[str, ListState]
    ) -> None:
        """Record list versions now known to be stored (after a commit or a read)."""
        if not self._cache_size or not learned:
            return
        with self._cache_lock:
            for channel, state in learned.items():
                key = (thread_id, checkpoint_ns, channel)
                # A few versions, not one: a reader that skipped fetching a
                # chain because a version was cached must still find it after
                # another thread's put of the same channel.
                states = [s for s in self._cache.get(key, ()) if s.version != state.version]
                self._cache[key] = [*states[-(_VERSIONS_CACHED - 1) :], state]
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _pinned(self) -> OrderedDict[tuple[str, str], dict[BlobKey, ListState]]:
        pins = getattr(self._pins, "groups", None)
        if pins is None:
            pins = self._pins.groups = OrderedDict()
        return cast(OrderedDict[tuple[str, str], dict[BlobKey, ListState]], pins)

    def take_pinned(self, thread_id: str, checkpoint_ns: str, memo: ListMemo) -> None:
        """Move the lists `chain_requests` relied on for a thread and namespace into `memo`."""
        pins = getattr(self._pins, "groups", None)
        if pins:
            for key, state in pins.pop((thread_id, checkpoint_ns), {}).items():
                memo.states.setdefault(key, state)

    def _note_touched(self, thread_id: str, ns: str, values: Iterable[Any]) -> None:
        ids: set[int] = set()
        for value in values:
            ids.add(id(value))
            if isinstance(value, (list, tuple)):
                ids.update(map(id, value))
        with self._cache_lock:
            self._touched.setdefault((thread_id, ns), set()).update(ids)

    def _take_touched(self, thread_id: str, ns: str) -> set[int]:
        with self._cache_lock:
            return self._touched.pop((thread_id, ns), set())

    def _marks(self, items: list[Any]) -> list[Any] | None:
        return fingerprints(items) if self.verify_items else None

    def forget(self, thread_ids: Iterable[str] | None = None) -> None:
        """Drop cached lists of some threads (all when None), e.g. after deleting rows."""
        with self._cache_lock:
            if thread_ids is None:
                self._cache.clear()
                self._touched.clear()
                return
            doomed = set(thread_ids)
            for key in [k for k in self._cache if k[0] in doomed]:
                del self._cache[key]
            for tkey in [k for k in self._touched if k[0] in doomed]:
                del self._touched[tkey]

    # -- encoding ----------------------------------------------------------------

    def encode_skeleton(self, checkpoint: Checkpoint) -> bytes:
        return encode_skeleton(cast(dict[str, Any], checkpoint), self.serde.dumps_typed)

    def decode_skeleton(self, data: bytes, checkpoint_id: str | None = None) -> dict[str, Any]:
        skeleton = self.decoded.skeleton(data, self._decode_skeleton)
        if checkpoint_id is not None:
            skeleton["id"] = checkpoint_id
        return skeleton

    def _decode_skeleton(self, data: bytes) -> dict[str, Any]:
        return decode_skeleton(data, None, self.serde.loads_typed)

    def encode_metadata(self, config: RunnableConfig, metadata: CheckpointMetadata) -> str:
        """Merge the config's metadata into the checkpoint's (as LangGraph does); JSON text."""
        return self._metadata_json(get_serializable_checkpoint_metadata(config, metadata))

    def _metadata_json(self, merged: Mapping[str, Any]) -> str:
        try:
            return _metadata_encoder(merged)
        except (TypeError, ValueError) as exc:
            bad = [k for k, v in merged.items() if not _is_json(v)]
            raise SerializationError(
                f"checkpoint metadata must be JSON values; key(s) {bad} hold {exc}"
            ) from exc

    # Cached through a core; ``StorageCore.decode_metadata(text)`` only parses.
    decode_metadata = MetadataDecoder()

    def plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> PutPlan:
        """Turn the arguments of ``put`` into the rows to store."""
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint.get("id")
        if not isinstance(checkpoint_id, str) or not checkpoint_id:
            raise ConfigurationError("checkpoint has no 'id'")
        check_text("checkpoint id", checkpoint_id)
        values = checkpoint.get("channel_values") or {}
        _check_channels(values, checkpoint.get("channel_versions") or {}, new_versions)
        # LangGraph passes the run id in the config; it reaches the merged metadata
        merged = get_serializable_checkpoint_metadata(config, metadata)
        meta_json = self._metadata_json(merged)
        run_id = merged.get("run_id")
        row = CheckpointRow(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            parent_id=checkpoint_id_of(config),
            skeleton=self.encode_skeleton(checkpoint),
            metadata=meta_json,
            run_id=str(run_id) if run_id is not None else None,
            ts=str(checkpoint.get("ts", "")),
        )
        blobs: list[BlobRow] = []
        learned: dict[str, ListState] = {}
        touched = self._take_touched(thread_id, ns)
        for channel, version in new_versions.items():
            ver = str(version)
            if channel not in values:
                # A missing row reads as "no value" too; an EMPTY row is only
                # needed to overwrite a reusable (caller-chosen) version.
                if not is_unique_version(ver):
                    blobs.append(BlobRow(thread_id, ns, channel, ver, BlobKind.EMPTY))
                continue
            value = values[channel]
            items, wrapped = _as_list(value) if self.delta_lists else (None, False)
            if items is not None and is_unique_version(ver):
                blob, state = self._encode_list(
                    thread_id, ns, channel, ver, items, wrapped, touched
                )
                learned[channel] = state
            else:
                tag, data = self._dump(value, thread_id, ns, channel, ver)
                blob = BlobRow(thread_id, ns, channel, ver, BlobKind.VALUE, tag, data)
                if not self._contextual:
                    self.decoded.learn_value(tag, data, value)
            blobs.append(blob)
        self.decoded.learn_skeleton(row.skeleton, checkpoint)
        versions = {ch: str(v) for ch, v in (checkpoint.get("channel_versions") or {}).items()}
        return PutPlan(row, blobs, config_for(thread_id, ns, checkpoint_id), learned, versions)

    def _encode_list(
        self,
        thread_id: str,
        ns: str,
        channel: str,
        version: str,
        items: list[Any],
        wrapped: bool,
        touched: set[int],
    ) -> tuple[BlobRow, ListState]:
        marks = self._marks(items)
        base = self._cached((thread_id, ns, channel))
        if base is not None and base.version != version:
            diff = diff_lists(base, items, touched, marks)
            if diff is not None:
                pieces, new_items = diff
                if not needs_snapshot(base, pieces, len(new_items), len(items)):
                    tag, data = self._dump(new_items, thread_id, ns, channel, version)
                    blob = BlobRow(
                        thread_id, ns, channel, version, BlobKind.LIST_DELTA, tag, data,
                        chain=base.chain, seq=base.seq + 1, base=base.version,
                        ops=None if pieces is None else msgpack.packb(pieces),
                        length=len(items), wrapped=wrapped,
                    )  # fmt: skip
                    # An append takes over the base's item ids, plus the new items'
                    # (only the newest version keeps them: they cost memory).
                    ids = None
                    if pieces is None and base.ids is not None:
                        ids = base.ids.union(map(id, new_items))
                        base.ids = None
                    state = ListState(
                        version, base.chain, base.seq + 1,
                        base.cost + len(new_items) + (len(pieces) if pieces else 0),
                        base.edits + (pieces is not None), list(items), marks, ids,
                    )  # fmt: skip
                    return blob, state
        return self.list_snapshot(thread_id, ns, channel, version, items, wrapped, marks)

    def list_snapshot(
        self,
        thread_id: str,
        ns: str,
        channel: str,
        version: str,
        items: list[Any],
        wrapped: bool,
        marks: list[Any] | None = None,
    ) -> tuple[BlobRow, ListState]:
        """Encode a whole list as the root of a new delta chain."""
        tag, data = self._dump(items, thread_id, ns, channel, version)
        blob = BlobRow(
            thread_id, ns, channel, version, BlobKind.LIST, tag, data,
            chain=version, seq=0, length=len(items), wrapped=wrapped,
        )  # fmt: skip
        marks = self._marks(items) if marks is None else marks
        return blob, ListState(version, version, 0, len(items), 0, list(items), marks)

    def rebase_missing(self, plan: PutPlan, missing_bases: set[BlobKey]) -> None:
        """Re-encode deltas whose base row turned out to be gone as snapshots.

        A backend calls this when, inside its write transaction, it finds that
        the base of a planned delta was deleted meanwhile (another process
        pruned the thread, say).
        """
        for i, blob in enumerate(plan.blobs):
            if blob.kind is BlobKind.LIST_DELTA and (blob.channel, blob.base) in missing_bases:
                state = plan.learned[blob.channel]
                plan.blobs[i], plan.learned[blob.channel] = self.list_snapshot(
                    blob.thread_id, blob.checkpoint_ns, blob.channel, blob.version,
                    state.items, blob.wrapped, state.marks,
                )  # fmt: skip

    def plan_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> list[WriteRow]:
        """Turn the arguments of ``put_writes`` into rows.

        Rows with ``idx >= 0`` are ordinary writes (the first stored wins);
        negative ``idx`` rows (error, interrupt, resume...) replace earlier ones.
        """
        thread_id = thread_id_of(config)
        ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
        if checkpoint_id is None:
            raise ConfigurationError("put_writes needs a config with a 'checkpoint_id'")
        if not isinstance(task_id, str) or not isinstance(task_path, str):
            raise ConfigurationError(
                f"task_id and task_path must be strings, got {type(task_id).__name__} "
                f"and {type(task_path).__name__}"
            )
        for write in writes:
            if not isinstance(write, (tuple, list)) or len(write) != 2:
                raise ConfigurationError(
                    f"each write must be a (channel, value) pair, got {write!r}"
                )
            if not isinstance(write[0], str) or not write[0]:
                raise ConfigurationError(
                    f"write channel must be a non-empty string, got {write[0]!r}"
                )
            check_text("write channel", write[0])
        check_text("task_id", task_id)
        check_text("task_path", task_path)
        self._note_touched(thread_id, ns, (value for _, value in writes))
        rows = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            tag, data = self._dump(value, thread_id, ns, checkpoint_id, task_id, idx, "write")
            if not self._contextual:
                self.decoded.learn_value(tag, data, value)
            rows.append(
                WriteRow(thread_id, ns, checkpoint_id, task_id, task_path, idx, channel, tag, data)
            )
        return rows

    # -- decoding ------------------------------------------------------------------

    @staticmethod
    def needed_blobs(skeleton: Mapping[str, Any]) -> list[BlobKey]:
        """Return the blob keys a checkpoint's channel values are stored under."""
        versions = skeleton.get("channel_versions") or {}
        return [(channel, str(version)) for channel, version in versions.items()]

    def chain_requests(self, blobs: Iterable[BlobRow]) -> dict[tuple[str, str], int]:
        """Return, per (channel, chain), the highest chain position to read.

        Versions this process holds intact (`cached_list`) need no chain rows;
        they are pinned for this OS thread until `decode_tuple` or
        `delta_history` of their thread and namespace takes them, so puts from
        other threads evicting them from the cache meanwhile cannot break the read.
        """
        wanted: dict[tuple[str, str], int] = {}
        for blob in blobs:
            if blob.kind is not BlobKind.LIST_DELTA or blob.chain is None:
                continue
            held = self.cached_list(blob.thread_id, blob.checkpoint_ns, blob)
            if held is None:
                key = (blob.channel, blob.chain)
                wanted[key] = max(wanted.get(key, 0), blob.seq)
            else:
                pins = self._pinned()
                group = (blob.thread_id, blob.checkpoint_ns)
                pins.setdefault(group, {})[(blob.channel, blob.version)] = held
                pins.move_to_end(group)
                while len(pins) > _PINNED_GROUPS:  # reads that failed before decoding
                    pins.popitem(last=False)
        return wanted

    def decode_tuple(
        self,
        row: CheckpointRow,
        blobs: Mapping[BlobKey, BlobRow],
        writes: Iterable[WriteRow],
        *,
        memo: ListMemo | None = None,
        skeleton: dict[str, Any] | None = None,
    ) -> tuple[CheckpointTuple, dict[str, ListState]]:
        """Rebuild a `CheckpointTuple` from its rows.

        Args:
            row: The checkpoint row.
            blobs: Blob rows by (channel, version): the checkpoint's own
                versions and, for list deltas, the rows of their chains.
            writes: The checkpoint's pending-write rows, in any order.
            memo: Lists already rebuilt during this call sequence (a ``list``
                page), reused and extended.
            skeleton: The decoded skeleton, when the caller has it already.

        Returns:
            The tuple, and the list versions rebuilt for it (to `remember`).
        """
        if skeleton is None:
            skeleton = self.decode_skeleton(row.skeleton, row.checkpoint_id)
        else:
            skeleton.setdefault("id", row.checkpoint_id)
        # Only a list page (a caller-given memo) reads older versions next.
        seed = memo is not None
        memo = ListMemo() if memo is None else memo
        self.take_pinned(row.thread_id, row.checkpoint_ns, memo)
        values: dict[str, Any] = {}
        lists: dict[str, ListState] = {}
        for channel, version in self.needed_blobs(skeleton):
            blob = blobs.get((channel, version))
            if blob is None or blob.kind is BlobKind.EMPTY:
                continue
            if blob.kind is BlobKind.VALUE:
                values[channel] = self._load_blob(blob)
            else:
                state = self.cached_list(row.thread_id, row.checkpoint_ns, blob)
                if state is None:
                    state = self.rebuild_list(blob, blobs, memo)
                elif seed and (blob.channel, blob.version) not in memo.states:
                    memo.states[(blob.channel, blob.version)] = state
                    memo.seed_prefixes(state, blob, blobs)
                lists[channel] = state
                values[channel] = (
                    _DeltaSnapshot(list(state.items)) if blob.wrapped else list(state.items)
                )
        checkpoint = cast(Checkpoint, {**skeleton, "channel_values": values})
        pending = self.decode_writes(writes)
        parent = (
            config_for(row.thread_id, row.checkpoint_ns, row.parent_id) if row.parent_id else None
        )
        return (
            CheckpointTuple(
                config=config_for(row.thread_id, row.checkpoint_ns, row.checkpoint_id),
                checkpoint=checkpoint,
                metadata=cast(CheckpointMetadata, self.decode_metadata(row.metadata)),
                parent_config=parent,
                pending_writes=pending,
            ),
            lists,
        )

    def decode_writes(self, writes: Iterable[WriteRow]) -> list[PendingWrite]:
        ordered = sorted(writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        return [(w.task_id, w.channel, self._load_write(w)) for w in ordered]

    def _load_write(self, w: WriteRow) -> Any:
        # The common case first, without building the place.
        if not self._contextual and type(w.payload) is bytes:
            entry = self.decoded.values.entries.get((w.type, w.payload))
            if entry is not None:
                return fresh(entry)
        return self._load(
            (w.type, w.payload),
            w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx, "write",
        )  # fmt: skip

    def _load_blob(self, blob: BlobRow) -> Any:
        if blob.type is None or blob.payload is None:
            raise CorruptDataError(
                f"channel {blob.channel!r} version {blob.version!r} of thread "
                f"{blob.thread_id!r} has no stored payload"
            )
        if not self._contextual and type(blob.payload) is bytes:
            entry = self.decoded.values.entries.get((blob.type, blob.payload))
            if entry is not None:
                return fresh(entry)
        return self._load(
            (blob.type, blob.payload),
            blob.thread_id, blob.checkpoint_ns, blob.channel, blob.version,
        )  # fmt: skip

    def rebuild_list(
        self,
        target: BlobRow,
        blobs: Mapping[BlobKey, BlobRow],
        memo: ListMemo,
    ) -> ListState:
        """Rebuild one list version by applying its delta chain from the root.

        The items are built in one list extended in place, so rebuilding costs
        the version's size, not the chain's length times it; each row's payload
        is decoded once per `memo` (a ``list`` call shares one across pages).
        """
        key = (target.channel, target.version)
        if key in memo.states:
            return memo.states[key]
        if key in memo.prefixes:
            return memo.take_prefix(key, target)
        path: list[BlobRow] = []
        start: ListState | None = None
        blob = target
        while True:
            start = memo.states.get((blob.channel, blob.version))
            if start is not None:
                break
            path.append(blob)
            if blob.kind is BlobKind.LIST:
                break
            if len(path) > len(blobs):
                raise CorruptDataError(
                    f"delta chain of channel {blob.channel!r} in thread {blob.thread_id!r} "
                    "loops back on itself"
                )
            if blob.kind is not BlobKind.LIST_DELTA or blob.base is None:
                raise CorruptDataError(
                    f"channel {blob.channel!r} version {blob.version!r} of thread "
                    f"{blob.thread_id!r} is not part of a list chain"
                )
            base = blobs.get((blob.channel, blob.base))
            if base is None:
                raise CorruptDataError(
                    f"channel {blob.channel!r} version {blob.version!r} of thread "
                    f"{blob.thread_id!r} is stored as a delta on version {blob.base!r}, "
                    "which is missing"
                )
            blob = base
        if start is not None:
            items, cost, edits = list(start.items), start.cost, start.edits
        else:
            items, cost, edits = [], 0, 0
        progress: list[tuple[int, int]] = []  # (cost, edits) after each step, root first
        for step in reversed(path):
            loaded = self._payload(step, memo)
            if step.kind is BlobKind.LIST:
                items, cost, edits = list(loaded), len(loaded), 0
            else:
                try:
                    pieces = None if step.ops is None else msgpack.unpackb(step.ops)
                    if pieces is None:
                        items += loaded
                    else:
                        items = apply_pieces(items, pieces, loaded)
                except (ValueError, TypeError, msgpack.UnpackException) as exc:
                    raise CorruptDataError(
                        f"delta {step.version!r} of channel {step.channel!r} is corrupt: {exc}"
                    ) from exc
                cost += len(loaded) + (len(pieces) if pieces else 0)
                edits += pieces is not None
            if len(items) != step.length:
                raise CorruptDataError(
                    f"channel {step.channel!r} version {step.version!r} rebuilt to "
                    f"{len(items)} items, {step.length} were stored"
                )
            progress.append((cost, edits))
        # Versions reached from the target's by appends only are prefixes of it:
        # a `list` walking history newest first slices them instead of rebuilding.
        for j in range(1, len(path)):
            child = path[j - 1]
            if child.kind is not BlobKind.LIST_DELTA or child.ops is not None:
                break
            memo.prefixes[(path[j].channel, path[j].version)] = (items, progress[-1 - j])
        state = ListState(
            target.version, target.chain or target.version, target.seq, cost, edits, items,
            self._marks(items),
        )  # fmt: skip
        memo.states[key] = state
        return state

    def _payload(self, step: BlobRow, memo: ListMemo) -> list[Any]:
        key = (step.channel, step.version)
        loaded = memo.payloads.get(key)
        if loaded is None:
            loaded = self._load_blob(step)
            if not isinstance(loaded, list):
                raise CorruptDataError(
                    f"list row of channel {step.channel!r} version {step.version!r} holds a "
                    f"{type(loaded).__name__}"
                )
            memo.payloads[key] = loaded
        return loaded

    def cached_list(self, thread_id: str, checkpoint_ns: str, blob: BlobRow) -> ListState | None:
        """Return this process's copy of a stored list version, if it is still intact.

        The copy is the list this process put or last read (the same objects
        the graph holds). With `verify_items`, it is used only while every
        item's fingerprint still matches.
        """
        state = self._cached((thread_id, checkpoint_ns, blob.channel), blob.version)
        if state is None:
            return None
        if state.marks is not None and fingerprints(state.items) != state.marks:
            return None
        return state

    # -- deletion and pruning ------------------------------------------------------

    def live_blobs(
        self, checkpoints: Iterable[CheckpointRow], blobs: Iterable[BlobRow]
    ) -> set[BlobKey]:
        """Return the blob keys still needed by `checkpoints` (delta bases included)."""
        by_key = {(b.channel, b.version): b for b in blobs}
        live: set[BlobKey] = set()
        stack = [
            key
            for row in checkpoints
            for key in self.needed_blobs(self.decode_skeleton(row.skeleton))
        ]
        while stack:
            key = stack.pop()
            if key in live:
                continue
            live.add(key)
            blob = by_key.get(key)
            if blob is not None and blob.kind is BlobKind.LIST_DELTA and blob.base is not None:
                stack.append((blob.channel, blob.base))
        return live

    def keep_for_prune(
        self,
        rows: Sequence[CheckpointRow],
        blobs: Mapping[BlobKey, BlobRow],
        strategy: str,
        *,
        keep_last: int = 1,
    ) -> set[str]:
        """Return the checkpoint ids of one namespace that a prune keeps.

        ``keep_latest`` keeps the `keep_last` latest checkpoints (with their
        writes, so pending interrupts survive) and, for each ``DeltaChannel``
        one of them uses, the ancestors back to the nearest one storing a value
        for that channel, without which the channel would silently rebuild as
        empty.
        """
        check_strategy(strategy)
        if keep_last < 1:
            raise ConfigurationError(f"keep_last must be at least 1, got {keep_last}")
        if strategy == "delete" or not rows:
            return set()
        by_id = {row.checkpoint_id: row for row in rows}
        newest = sorted(rows, key=lambda r: r.checkpoint_id, reverse=True)[:keep_last]
        keep = {row.checkpoint_id for row in newest}
        for kept in newest:
            counters = self.decode_metadata(kept.metadata).get("counters_since_delta_snapshot")
            remaining = set(counters) if isinstance(counters, dict) else set()
            row: CheckpointRow | None = kept
            while row is not None and remaining:
                keep.add(row.checkpoint_id)
                versions = self.decode_skeleton(row.skeleton).get("channel_versions") or {}
                for channel in list(remaining):
                    blob = blobs.get((channel, str(versions.get(channel))))
                    if blob is not None and blob.kind is not BlobKind.EMPTY:
                        remaining.discard(channel)
                row = by_id.get(row.parent_id) if row.parent_id else None
        return keep

    # -- DeltaChannel history ------------------------------------------------------

    def delta_history_walk(
        self,
        ancestors: Sequence[CheckpointRow],
        blobs: Mapping[BlobKey, BlobRow],
        channels: Sequence[str],
    ) -> list[tuple[CheckpointRow, dict[str, Any], set[str]]]:
        """Plan a ``get_delta_channel_history`` walk over the parent chain.

        Args:
            ancestors: The target's parent, grandparent... up to the root.
            blobs: Blob rows of those ancestors' versions of `channels`.
            channels: The channels asked for.

        Returns:
            For each ancestor visited: the row, its skeleton, and the channels
            whose seed (stored value) it holds. The walk stops once every
            channel has a seed.
        """
        remaining = set(channels)
        steps = []
        for row in ancestors:
            if not remaining:
                break
            skeleton = self.decode_skeleton(row.skeleton)
            versions = skeleton.get("channel_versions") or {}
            seeds = set()
            for channel in remaining:
                if channel in versions:
                    blob = blobs.get((channel, str(versions[channel])))
                    if blob is not None and blob.kind is not BlobKind.EMPTY:
                        seeds.add(channel)
            steps.append((row, skeleton, seeds))
            remaining -= seeds
        return steps

    def delta_history(
        self,
        steps: Sequence[tuple[CheckpointRow, dict[str, Any], set[str]]],
        blobs: Mapping[BlobKey, BlobRow],
        writes: Mapping[str, Iterable[WriteRow]],
        channels: Sequence[str],
    ) -> dict[str, DeltaChannelHistory]:
        """Answer ``get_delta_channel_history`` from a planned walk and its rows."""
        remaining = set(channels)
        collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
        seeds: dict[str, Any] = {}
        memo = ListMemo()
        if steps:
            self.take_pinned(steps[0][0].thread_id, steps[0][0].checkpoint_ns, memo)
        for row, skeleton, seed_channels in steps:
            versions = skeleton.get("channel_versions") or {}
            for write in reversed(self.decode_writes(writes.get(row.checkpoint_id, ()))):
                if write[1] in remaining:
                    collected[write[1]].append(write)
            for channel in seed_channels:
                blob = blobs[(channel, str(versions[channel]))]
                if blob.kind is BlobKind.VALUE:
                    seeds[channel] = self._load_blob(blob)
                else:
                    items = list(self.rebuild_list(blob, blobs, memo).items)
                    seeds[channel] = _DeltaSnapshot(items) if blob.wrapped else items
                remaining.discard(channel)
        result: dict[str, DeltaChannelHistory] = {}
        for channel in channels:
            entry: DeltaChannelHistory = {"writes": list(reversed(collected[channel]))}
            if channel in seeds:
                entry["seed"] = seeds[channel]
            result[channel] = entry
        return result

    # -- copying -------------------------------------------------------------------

    def recontext_blob(self, blob: BlobRow, thread_id: str) -> BlobRow:
        """Return `blob` as stored under another thread (re-encrypted if need be)."""
        if blob.payload is None or blob.type is None or not self._contextual:
            return _moved(blob, thread_id)
        value = self._load_blob(blob)
        tag, data = self._dump(value, thread_id, blob.checkpoint_ns, blob.channel, blob.version)
        moved = _moved(blob, thread_id)
        moved.type, moved.payload = tag, data
        return moved

    def recontext_write(self, write: WriteRow, thread_id: str) -> WriteRow:
        """Return `write` as stored under another thread (re-encrypted if need be)."""
        moved = WriteRow(
            thread_id, write.checkpoint_ns, write.checkpoint_id, write.task_id,
            write.task_path, write.idx, write.channel, write.type, write.payload,
        )  # fmt: skip
        if self._contextual:
            value = self._load_write(write)
            moved.type, moved.payload = self._dump(
                value, thread_id, write.checkpoint_ns, write.checkpoint_id, write.task_id,
                write.idx, "write",
            )  # fmt: skip
        return moved


def _moved(blob: BlobRow, thread_id: str) -> BlobRow:
    return BlobRow(
        thread_id, blob.checkpoint_ns, blob.channel, blob.version, blob.kind, blob.type,
        blob.payload, blob.chain, blob.seq, blob.base, blob.ops, blob.length, blob.wrapped,
    )  # fmt: skip


def check_single_writer(row: CheckpointRow, newest_id: str | None) -> None:
    """Refuse a put that does not build on the newest checkpoint of its thread and namespace.

    The single-writer guard (``single_writer=True``): a backend calls this in
    the put's own atomic section, with the newest checkpoint id stored in the
    row's (thread, namespace). A put builds on its parent; if a checkpoint
    newer than that parent is stored, another writer got there first, and
    storing this one would silently fork the history. Checkpoint ids are
    time-ordered, so a parent newer than anything stored (durability
    ``"exit"`` stores only a run's last checkpoint) passes, and so does the
    same checkpoint put again.

    Raises:
        WriteConflictError: a newer checkpoint is stored (names both ids).
    """
    if newest_id is None or newest_id == row.checkpoint_id:
        return
    parent = row.parent_id
    if parent is not None and newest_id <= parent:
        return
    where = f"thread {row.thread_id!r}" + (
        f", namespace {row.checkpoint_ns!r}" if row.checkpoint_ns else ""
    )
    builds_on = f"checkpoint {parent!r}" if parent else "no checkpoint (a new thread)"
    raise WriteConflictError(
        f"single-writer guard: {where} has checkpoint {newest_id!r}, newer than the one this "
        f"put builds on ({builds_on}); another writer is running on this thread. Re-read the "
        "thread and retry, or fork it (fork_thread) to branch from an older checkpoint",
        thread_id=row.thread_id,
        checkpoint_ns=row.checkpoint_ns,
        parent_id=parent,
        newest_id=newest_id,
    )


class CoreSaverMixin:
    """Shared behaviour of the savers built on a `StorageCore`.

    LangGraph's `with_allowlist` clones a saver with another serializer; the
    clone's core must use that serializer too.
    """

    _core: StorageCore
    serde: SerializerProtocol

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> Any:
        clone = super().with_allowlist(extra_allowlist)  # type: ignore[misc]
        if clone is not self:
            clone._core = self._core.with_serde(clone.serde)
        return clone


def _describe(where: Sequence[str | int]) -> str:
    if where and where[-1] == "write":
        names: tuple[str, ...] = ("thread", "namespace", "checkpoint", "task", "write index")
    else:
        names = ("thread", "namespace", "channel", "version")
    return ", ".join(f"{name} {part!r}" for name, part in zip(names, where, strict=False))


def _check_channels(*mappings: Mapping[Any, Any]) -> None:
    # A non-string name would be stored, then break decoding the skeleton.
    for mapping in mappings:
        try:  # the common case, checked at C speed: ASCII names without NUL
            joined = "".join(mapping)
            if joined.isascii() and "\x00" not in joined:
                continue
        except TypeError:  # a name that is not a string: found below
            pass
        for channel in mapping:
            if not isinstance(channel, str):
                raise ConfigurationError(
                    f"channel names must be strings, got {type(channel).__name__} {channel!r}"
                )
            check_text("channel name", channel)


def _as_list(value: Any) -> tuple[list[Any] | None, bool]:
    if type(value) is list:
        return value, False
    if type(value) is _DeltaSnapshot and type(value.value) is list:
        return value.value, True
    return None, False


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
