"""Script replies to rows and rows to script arguments, shared by the sync and async classes.

The Lua scripts (`_scripts`) return stored values untouched, as flat
field/value lists; these helpers turn them into the storage core's rows
(`CheckpointRow`, `BlobRow`, `WriteRow`), remembering the rows decoded or
put before by their stored bytes (`DecodedReplies`), and, for ``list``, into
checkpoint tuples, keeping what a listing has already received
(`PageDecoder`) so later pages skip it; and the other way, they build the
arguments of a put or a copy, and decide what a prune or ``keep_last``
deletes. No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from langgraph.checkpoint.base import CheckpointTuple, DeltaChannelHistory

from checkpointkit.checkpointers._decoded import BoundedMap
from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.base import (
    BlobKey,
    ListMemo,
    PutPlan,
    StorageCore,
    ThreadInfo,
    check_single_writer,
    moved_checkpoint,
)
from checkpointkit.checkpointers.redis._codec import (
    decode_blob,
    decode_row,
    decode_writes,
    encode_blob,
    encode_row,
    encode_write,
    encode_writes,
    row_needed,
    text,
)
from checkpointkit.checkpointers.redis._keys import (
    blob_field,
    blob_suffix,
    cross_member,
    escape,
    ns_member,
    parse_blob_field,
    row_field,
    unescape,
)
from checkpointkit.errors import WriteConflictError

__all__ = [
    "DecodedReplies",
    "Newest",
    "PageDecoder",
    "ThreadCursor",
    "blob_pairs",
    "delta_history_of",
    "dump_rows",
    "keep_last_ids",
    "kept_writes",
    "missing_bases",
    "put_args",
    "refuse",
    "restore_args",
    "rows_with_kinds",
    "storage_bytes_of",
    "thread_info_of",
    "unkept_fields",
    "write_records",
]


class _Bounded(BoundedMap[Any]):
    """A `BoundedMap` of decoded rows, of stored values up to `max_bytes` long."""

    def decoded(
        self, thread_id: str, field: Any, value: Any, decode: Callable[[str, Any, Any], Any]
    ) -> Any:
        """Return what `decode` makes of `value` stored under `field`, decoding it once."""
        if type(value) is not bytes or type(field) is not bytes or len(value) > self.max_bytes:
            return decode(thread_id, field, value)
        key = (thread_id, field, value)
        found = self.entries.get(key)
        if found is None:
            found = decode(thread_id, field, value)
            self.put(key, found)
        return found


class DecodedReplies:
    """Rows decoded before, keyed by their thread, field and stored bytes.

    A ``get_tuple`` receives mostly values it has seen already (the channels
    that did not change), and often the checkpoint and writes this process
    has just put. The same thread, field and bytes always decode to the same
    row, so a hit can never be stale, whoever wrote, deleted or re-created
    the thread. Rows are never mutated, so reads share them; a shared blob's
    payload is the same bytes object each time, whose hash Python keeps,
    which makes the core's lookup of its decoded value cheaper too. A put
    teaches the cache the rows and writes it encodes (`learn_put`,
    `learn_writes`): reading them back skips their decoding.

    Args:
        size: How many blob rows to keep (checkpoint rows and writes: an eighth).
        max_bytes: Longer stored blobs are decoded every time (rows and writes:
            four times longer).
    """

    def __init__(self, size: int = 4096, max_bytes: int = 2048) -> None:
        self._blobs = _Bounded(size, max_bytes)
        self._rows = _Bounded(max(1, size // 8), 4 * max_bytes)
        self._writes = _Bounded(max(1, size // 8), 4 * max_bytes)

    def blob(self, thread_id: str, field: Any, value: Any) -> BlobRow:
        """Return the blob row stored as `value` under `field` (see `decode_blob`)."""
        return cast(BlobRow, self._blobs.decoded(thread_id, field, value, decode_blob))

    def row(self, thread_id: str, field: Any, value: Any) -> CheckpointRow:
        """Return the checkpoint row stored as `value` under `field` (see `decode_row`)."""
        return cast(CheckpointRow, self._rows.decoded(thread_id, field, value, decode_row))

    def writes(self, thread_id: str, field: Any, value: Any) -> Sequence[WriteRow]:
        """Return the pending writes stored as `value` under `field` (see `decode_writes`)."""
        if not value:
            return decode_writes(thread_id, field, value)
        return cast(Sequence[WriteRow], self._writes.decoded(thread_id, field, value, _writes_of))

    def learn_put(self, args: Sequence[Any], plan: PutPlan) -> None:
        """Keep the rows a put stored with `args`, as `put_args` laid them out.

        The checkpoint row's field and bytes are arguments 1 and 2, the
        (field, value) pairs of its blobs are the last ones, in plan order.
        """
        row = plan.checkpoint
        value = args[2]
        if type(row.skeleton) is bytes and len(value) <= self._rows.max_bytes:
            self._rows.put((row.thread_id, _field_bytes(args[1]), value), row)
        pairs = args[len(args) - 2 * len(plan.blobs) :]
        for blob, i in zip(plan.blobs, range(0, len(pairs), 2), strict=True):
            value = pairs[i + 1]
            if type(blob.payload) is bytes and len(value) <= self._blobs.max_bytes:
                self._blobs.put((blob.thread_id, _field_bytes(pairs[i]), value), blob)

    def learn_writes(self, field: str, value: bytes, rows: Sequence[WriteRow]) -> None:
        """Keep the writes a put_writes encoded as `value` under `field` (`write_records`)."""
        plain = all(type(w.payload) is bytes for w in rows)
        if rows and plain and len(value) <= self._writes.max_bytes:
            self._writes.put((rows[0].thread_id, _field_bytes(field), value), tuple(rows))


def _writes_of(thread_id: str, field: Any, value: Any) -> tuple[WriteRow, ...]:
    return tuple(decode_writes(thread_id, field, value))


def _field_bytes(field: str) -> bytes:
    """Return a field name as Redis returns it (`text` undoes this)."""
    return field.encode("utf-8", "surrogatepass")


def blob_pairs(
    thread_id: str, pairs: Sequence[Any], cache: DecodedReplies | None = None
) -> dict[str, dict[BlobKey, BlobRow]]:
    """Decode a script's flat (blob field, blob) list into namespace -> key -> row."""
    decode = decode_blob if cache is None else cache.blob
    out: dict[str, dict[BlobKey, BlobRow]] = {}
    ns: str | None = None
    by_key: dict[BlobKey, BlobRow] = {}
    for i in range(0, len(pairs), 2):
        blob = decode(thread_id, pairs[i], pairs[i + 1])
        if blob.checkpoint_ns != ns:  # replies group blobs by namespace
            ns = blob.checkpoint_ns
            by_key = out.setdefault(ns, {})
        by_key[(blob.channel, blob.version)] = blob
    return out


def rows_with_kinds(
    thread_id: str, fields: Sequence[Any], values: Sequence[Any], kinds: Sequence[Any]
) -> tuple[list[CheckpointRow], dict[str, dict[BlobKey, BlobRow]]]:
    """Decode a ROWS reply: the rows, and per namespace blob stubs carrying their kind."""
    rows = []
    stubs: dict[str, dict[BlobKey, BlobRow]] = {}
    for field, value, digits in zip(fields, values, kinds, strict=True):
        if not value:
            continue
        row = decode_row(thread_id, field, value)
        rows.append(row)
        by_key = stubs.setdefault(row.checkpoint_ns, {})
        for suffix, digit in zip(row_needed(value), text(digits), strict=False):
            if digit == "-":
                continue
            channel, _, version = suffix.partition("\x00")
            key = (unescape(channel), unescape(version))
            by_key[key] = BlobRow(
                thread_id, row.checkpoint_ns, key[0], key[1], BlobKind(int(digit))
            )
    return rows, stubs


def keep_last_ids(
    core: StorageCore, rows: Sequence[CheckpointRow], stubs: Mapping[BlobKey, BlobRow], n: int
) -> set[str]:
    """Return the checkpoint ids of one namespace that ``keep_last=n`` keeps.

    The `n` latest, and for each of them what ``prune(strategy="keep_latest")``
    would keep for it: the ancestors its ``DeltaChannel`` values are rebuilt from.
    """
    ordered = sorted(rows, key=lambda r: r.checkpoint_id)
    keep: set[str] = set()
    for i in range(max(0, len(ordered) - n), len(ordered)):
        keep |= core.keep_for_prune(ordered[: i + 1], stubs, "keep_latest")
    return keep


def dump_rows(
    thread_id: str, reply: Sequence[Any]
) -> tuple[list[CheckpointRow], dict[str, dict[BlobKey, BlobRow]], dict[str, list[WriteRow]]]:
    """Decode a DUMP reply: rows, blobs per namespace, writes per row field."""
    row_pairs, blob_flat, write_pairs = reply
    rows = [
        decode_row(thread_id, row_pairs[i], row_pairs[i + 1]) for i in range(0, len(row_pairs), 2)
    ]
    writes = {
        text(write_pairs[i]): decode_writes(thread_id, write_pairs[i], write_pairs[i + 1])
        for i in range(0, len(write_pairs), 2)
    }
    return rows, blob_pairs(thread_id, blob_flat), writes


def storage_bytes_of(
    rows: Iterable[CheckpointRow],
    blobs: Mapping[str, Mapping[BlobKey, BlobRow]],
    writes: Mapping[str, Iterable[WriteRow]],
) -> int:
    """Count a thread's stored bytes exactly as `MemoryCheckpointer.storage_bytes` does."""
    total = 0
    for row in rows:
        total += len(row.skeleton) + len(row.metadata.encode()) + 3 * 36
    for by_key in blobs.values():
        for b in by_key.values():
            total += len(b.payload or b"") + len(b.ops or b"")
            total += len(b.channel) + len(b.version) + len(b.base or "") + 16
    for rows_of_checkpoint in writes.values():
        for w in rows_of_checkpoint:
            total += len(w.payload) + len(w.channel) + len(w.task_id) + 16
    return total


def refuse(row: CheckpointRow, newest: Any) -> NoReturn:
    """Raise the single-writer guard's error for a put the PUT script refused.

    Args:
        row: The refused checkpoint.
        newest: The newest checkpoint id of its namespace, as the script returned it.

    Raises:
        WriteConflictError: always.
    """
    newest_id = unescape(text(newest))
    check_single_writer(row, newest_id)
    # Not reached: the script applies the same rule, in the same order.
    raise WriteConflictError(
        f"single-writer guard: Redis refused checkpoint {row.checkpoint_id!r} of thread "
        f"{row.thread_id!r}: checkpoint {newest_id!r} is newer than its parent",
        thread_id=row.thread_id, checkpoint_ns=row.checkpoint_ns,
        parent_id=row.parent_id, newest_id=newest_id,
    )  # fmt: skip


def missing_bases(fields: Iterable[Any]) -> set[BlobKey]:
    """Decode the blob fields a PUT script found missing into blob keys."""
    return {parse_blob_field(text(f))[1:] for f in fields}


@dataclass(frozen=True, slots=True)
class Newest:
    """A heap entry of a merged listing: the heap pops the newest checkpoint id first."""

    checkpoint_id: str
    order: int  # ties: the thread met first in the threads index wins
    thread_id: str

    def __lt__(self, other: Newest) -> bool:
        if self.checkpoint_id != other.checkpoint_id:
            return self.checkpoint_id > other.checkpoint_id
        return self.order < other.order


class PageDecoder:
    """Decodes one thread's rows during a ``list`` call, sharing values across pages.

    Blob rows received on earlier pages are kept (and named to the server as
    held, so it skips them), and rebuilt lists are shared through one
    `ListMemo` per namespace, as the memory checkpointer does.
    """

    def __init__(self, core: StorageCore, thread_id: str) -> None:
        self.core = core
        self.thread_id = thread_id
        self.blobs: dict[str, dict[BlobKey, BlobRow]] = {}
        self.memos: dict[str, ListMemo] = {}
        self.held: list[str] = []

    def add(self, pairs: Sequence[Any]) -> None:
        """Keep the blobs of a reply."""
        for ns, by_key in blob_pairs(self.thread_id, pairs).items():
            self.blobs.setdefault(ns, {}).update(by_key)
            self.held += [blob_field(ns, *key) for key in by_key]

    def decode(self, row: CheckpointRow, writes: bytes | None) -> CheckpointTuple:
        """Rebuild the tuple of `row` from the blobs held and its writes value."""
        ns = row.checkpoint_ns
        tup, _ = self.core.decode_tuple(
            row,
            self.blobs.get(ns, {}),
            decode_writes(self.thread_id, row_field(ns, row.checkpoint_id), writes),
            memo=self.memos.setdefault(ns, ListMemo()),
        )
        return tup


class ThreadCursor:
    """One thread's position in a ``list(None)`` that merges threads newest first."""

    def __init__(self, thread_id: str, order: int, core: StorageCore) -> None:
        self.thread_id = thread_id
        self.order = order
        self.reader = PageDecoder(core, thread_id)
        self.rows: list[CheckpointRow] = []  # newest last
        self.upper = ""  # lex bound of the next page
        self.more = False

    def fill(self, reply: Sequence[Any], page: int) -> None:
        """Take a PAGE reply (rows without values) of at most `page` checkpoints."""
        _, last, fields, values, _, _ = reply
        rows = [decode_row(self.thread_id, f, v) for f, v in zip(fields, values, strict=True) if v]
        self.rows = rows[::-1]
        self.more = len(fields) >= page
        if fields:
            self.upper = "(" + text(last)

    def head(self) -> Newest | None:
        """Return the heap entry of the next row, if any."""
        if not self.rows:
            return None
        return Newest(self.rows[-1].checkpoint_id, self.order, self.thread_id)

    def pop(self) -> CheckpointRow:
        return self.rows.pop()


def unkept_fields(
    core: StorageCore,
    rows: Sequence[CheckpointRow],
    stubs: Mapping[str, Mapping[BlobKey, BlobRow]],
    keep_last: int | None,
) -> list[str]:
    """Return the row fields a prune (`keep_last` None: ``keep_latest``) would delete.

    Args:
        core: The storage core (its `keep_for_prune` decides).
        rows: The rows of the namespaces concerned.
        stubs: Per namespace, blob stubs carrying the kind of each needed blob.
        keep_last: Keep this many latest checkpoints per namespace instead of one.
    """
    by_ns: dict[str, list[CheckpointRow]] = {}
    for row in rows:
        by_ns.setdefault(row.checkpoint_ns, []).append(row)
    doomed = []
    for ns, in_ns in by_ns.items():
        if keep_last is None:
            keep = core.keep_for_prune(in_ns, stubs.get(ns, {}), "keep_latest")
        else:
            keep = keep_last_ids(core, in_ns, stubs.get(ns, {}), keep_last)
        doomed += [row_field(ns, r.checkpoint_id) for r in in_ns if r.checkpoint_id not in keep]
    return doomed


def restore_args(
    core: StorageCore,
    rows: Sequence[CheckpointRow],
    blobs: Mapping[str, Mapping[BlobKey, BlobRow]],
    writes: Mapping[str, Sequence[WriteRow]],
    target: str,
) -> list[Any]:
    """Build the RESTORE arguments copying `rows` (live values and writes too) to `target`.

    Values are re-encrypted for their new place when the serializer binds
    them to it (`recontext_blob`, `recontext_write`).
    """
    row_args: list[Any] = []
    blob_args: list[Any] = []
    write_args: list[Any] = []
    for ns in {row.checkpoint_ns for row in rows}:
        in_ns = [row for row in rows if row.checkpoint_ns == ns]
        by_key = blobs.get(ns, {})
        for key in core.live_blobs(in_ns, by_key.values()):
            if key in by_key:
                blob_args += [
                    blob_field(ns, *key),
                    encode_blob(core.recontext_blob(by_key[key], target)),
                ]
        for row in in_ns:
            skeleton = core.decode_skeleton(row.skeleton)
            versions = {c: str(v) for c, v in (skeleton.get("channel_versions") or {}).items()}
            field = row_field(ns, row.checkpoint_id)
            row_args += [
                field, encode_row(moved_checkpoint(row, target), versions),
                ns_member(ns, row.checkpoint_id), cross_member(ns, row.checkpoint_id),
            ]  # fmt: skip
            records = [encode_write(core.recontext_write(w, target)) for w in writes.get(field, [])]
            if records:
                write_args += [field, b"".join(records)]
    return [len(row_args) // 4, len(blob_args) // 2, *row_args, *blob_args, *write_args]


def put_args(plan: PutPlan, ttl_ms: int, *, count: bool, guard: bool, score: str) -> list[Any]:
    """Build the PUT arguments of a planned checkpoint (see `_scripts.PUT`).

    Args:
        plan: The rows to store.
        ttl_ms: The thread's TTL (0: none).
        count: Ask for the number of checkpoints in the namespace (``keep_last``).
        guard: Apply the single-writer guard (`check_single_writer`) in the script.
        score: The thread's threads-index score after the put (`_index.put_score`).
    """
    row = plan.checkpoint
    ns, checkpoint_id = escape(row.checkpoint_ns), escape(row.checkpoint_id)
    field = f"{ns}\x00{checkpoint_id}"
    pre = ns + "\x00"
    bases = sorted(pre + blob_suffix(channel, base) for channel, base in plan.delta_bases)
    args: list[Any] = [
        ttl_ms, field, encode_row(row, plan.versions), "n" + field,
        f"c{checkpoint_id}\x00{ns}", "1" if count else "",
        ("=" + escape(row.parent_id or "")) if guard else "", row.thread_id, score,
        len(bases), *bases,
    ]  # fmt: skip
    for blob in plan.blobs:
        args += [pre + blob_suffix(blob.channel, blob.version), encode_blob(blob)]
    return args


def write_records(rows: Sequence[WriteRow]) -> bytes:
    """Encode the rows of one ``put_writes`` call as one writes value (see `_scripts.WRITES`).

    Applied in order, as the memory checkpointer does: of rows with the same
    (task, idx), the first ordinary one or the last special one (idx < 0) wins.
    """
    return encode_writes(kept_writes(rows))


def kept_writes(rows: Sequence[WriteRow]) -> list[WriteRow]:
    """Return the rows of one ``put_writes`` call that `write_records` encodes, in order."""
    kept: dict[tuple[str, int], WriteRow] = {}
    for row in rows:
        key = (row.task_id, row.idx)
        if row.idx < 0 or key not in kept:
            kept[key] = row
    return list(kept.values())


def thread_info_of(core: StorageCore, thread_id: str, reply: Sequence[Any]) -> ThreadInfo | None:
    """Decode a THREAD_INFO reply (None: no checkpoint in the root namespace)."""
    if not reply[0]:
        return None
    count, first_field, first_value, last_field, last_value = reply
    first = decode_row(thread_id, first_field, first_value)
    last = decode_row(thread_id, last_field, last_value)
    metadata = core.decode_metadata(last.metadata)
    return ThreadInfo(thread_id, metadata, int(count), first.ts, last.ts)


def delta_history_of(
    core: StorageCore, thread_id: str, ns: str, reply: Sequence[Any], channels: Sequence[str]
) -> dict[str, DeltaChannelHistory]:
    """Answer ``get_delta_channel_history`` from a HISTORY reply (the ancestors' rows)."""
    fields, values, writes, pairs = reply
    ancestors = [decode_row(thread_id, f, v) for f, v in zip(fields, values, strict=True)]
    blobs = blob_pairs(thread_id, pairs).get(ns, {})
    steps = core.delta_history_walk(ancestors, blobs, channels)
    by_id = {
        row.checkpoint_id: decode_writes(thread_id, f, w)
        for row, f, w in zip(ancestors, fields, writes, strict=True)
    }
    return core.delta_history(steps, blobs, by_id, channels)
