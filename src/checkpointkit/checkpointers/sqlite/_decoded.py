"""Decoded plain values kept per process, so a read decodes only what it has not seen.

A checkpoint read decodes every channel value, most of them unchanged since
the last read, its skeleton and its metadata. Values made only of plain data
(dicts, lists, tuples, strings, numbers, bytes, booleans, None) are kept
here as *templates*, keyed by their stored bytes (or JSON text):
the same bytes always decode to the same value, so a template can never be
stale, whichever process wrote, deleted or re-created the row. Each read gets
a fresh copy of the template, never the template itself, so a caller that
edits what it read changes nothing another read returns. Each template comes
with its *plan* (which of its parts are containers), so a copy is a few
``dict.copy()`` calls rather than a walk over every value.

Templates come from decoding, and from the values this process writes: a put
or put_writes with the default serializer (`MsgpackSerializer`, which gives
plain data back exactly as it was given, types included) keeps a copy of each
plain value under the bytes it just encoded, and a put keeps its skeleton's
the same way (the skeleton codec gives back the same plain values too), so
reading back a checkpoint this process wrote decodes little. Values holding
anything else (messages, models) are decoded every time.

With a serializer that binds values to their storage place (encryption),
the place is part of the key: a ciphertext moved elsewhere must still fail
to decrypt.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import msgpack

from checkpointkit.checkpointers._rows import BlobKind, BlobRow, WriteRow
from checkpointkit.checkpointers.base import PutPlan, StorageCore
from checkpointkit.serde import MsgpackSerializer, SerializerProtocol

__all__ = ["DecodedCache", "SQLiteCore", "plain_copy"]

_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes})
_SKELETON_SCALARS: frozenset[type] = frozenset({str, float, bool, type(None), bytes})
_MISS = object()
# How a skeleton packed as plain msgpack starts: the array [tag, body].
_PLAIN_SKELETON = msgpack.packb(["ck-skeleton", None])[:-1]

# How to copy a template: for each child that is a container, its own plan (an
# empty plan: a container of scalars, copied in one call). None: a scalar.
Plan = dict[Any, "Plan"] | None
Template = tuple[Any, Plan]


class _NotPlain(Exception):
    pass


def _copy(value: Any, budget: list[int], scalars: frozenset[type], strict: bool) -> Template:
    """Copy plain data and make its plan, in one pass; raise `_NotPlain` for anything else.

    `strict`: only what the skeleton codec round-trips (text keys, 64-bit
    ints, no tuples); otherwise what `MsgpackSerializer` does.
    """
    kind = type(value)
    if kind in scalars:
        return value, None
    if kind is int:  # strict only: the skeleton codec packs 64-bit ints
        if -(2**63) <= value < 2**64:
            return value, None
        raise _NotPlain
    budget[0] -= 1
    if budget[0] < 0:
        raise _NotPlain
    plan: dict[Any, Plan] = {}
    if kind is dict:
        if strict and value and set(map(type, value)) != {str}:
            raise _NotPlain
        if set(map(type, value.values())) <= scalars:  # the common case, at C speed
            return value.copy(), plan
        out: Any = {}
        for k, v in value.items():
            if type(v) in scalars:
                out[k] = v
            else:
                out[k], plan[k] = _copy(v, budget, scalars, strict)
        return out, {k: p for k, p in plan.items() if p is not None}
    if kind is list or (kind is tuple and not strict):
        items = list(value)
        if not set(map(type, items)) <= scalars:
            for i, v in enumerate(items):
                if type(v) not in scalars:
                    items[i], plan[i] = _copy(v, budget, scalars, strict)
            plan = {i: p for i, p in plan.items() if p is not None}
        return (items if kind is list else tuple(items)), plan
    raise _NotPlain


def _template(value: Any, limit: int = 64, skeleton: bool = False) -> Template | None:
    """Return a copy of plain data with its plan, or None (see `plain_copy`)."""
    try:
        if skeleton:
            return _copy(value, [limit], _SKELETON_SCALARS, True)
        return _copy(value, [limit], _SCALARS, False)
    except (_NotPlain, RecursionError):
        return None


def plain_copy(value: Any, limit: int = 64, *, skeleton: bool = False) -> Any:
    """Return a deep copy of `value` if it is plain data, else a private marker.

    Args:
        value: The value to copy.
        limit: The most containers to copy; a bigger value is not plain here
            (decoding it again is cheaper than copying it in Python).
        skeleton: Check what the skeleton codec round-trips (text keys,
            64-bit ints, no tuples) instead of what the serializer does.
    """
    found = _template(value, limit, skeleton)
    return _MISS if found is None else found[0]


def _fresh(template: Any, plan: dict[Any, Plan]) -> Any:
    """Copy a container template by its plan (scalars are shared: they are immutable)."""
    if type(template) is tuple:
        if not plan:
            return template
        items = list(template)
        for i, sub in plan.items():
            if sub is not None:
                items[i] = _fresh(items[i], sub)
        return tuple(items)
    out = template.copy()
    for k, sub in plan.items():
        if sub is not None:
            out[k] = _fresh(out[k], sub)
    return out


def _use(entry: Template) -> Any:
    template, plan = entry
    return template if plan is None else _fresh(template, plan)


class DecodedCache:
    """A bounded map from stored bytes to the plain value they decode to.

    Lookups take no lock (a dict read is atomic); inserts do, and drop the
    oldest eighth of the entries when the map is full.

    Args:
        size: How many templates to keep (0 turns the cache off).
        max_bytes: Longer stored values are not kept.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 2048) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._items: dict[Any, Template] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    def get(self, key: Any) -> Any:
        """Return a fresh copy of the value stored under `key`, or the miss marker."""
        entry = self._items.get(key)
        return _MISS if entry is None else _use(entry)

    def put(self, key: Any, entry: Template) -> None:
        """Keep a template (a plain value no caller holds) and its plan under `key`."""
        if not self.size:
            return
        with self._lock:
            items = self._items
            if len(items) >= self.size:
                for old in list(itertools.islice(items, max(1, self.size // 8))):
                    del items[old]
            items[key] = entry

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class SQLiteCore(StorageCore):
    """The storage core with decoded plain values, skeletons and metadata kept per process.

    Args:
        serde: The serializer for channel values and writes.
        **options: `StorageCore` options.
    """

    def __init__(self, serde: SerializerProtocol, **options: Any) -> None:
        super().__init__(serde, **options)
        self._options = options
        self.values = DecodedCache()
        self.skeletons = DecodedCache(512, 16384)
        self.metadata = DecodedCache(512, 4096)
        # Our own serializer gives plain data back exactly: values it writes
        # are kept as they are put (another serializer's may come back changed).
        self._exact = type(serde) is MsgpackSerializer

    def with_serde(self, serde: SerializerProtocol) -> SQLiteCore:
        return SQLiteCore(serde, **self._options)

    # -- reads ---------------------------------------------------------------------

    def _load_blob(self, blob: BlobRow) -> Any:
        # The common case first, without building the place.
        if not self._contextual:
            entry = self.values._items.get((blob.type, blob.payload))
            if entry is not None:
                return _use(entry)
        return super()._load_blob(blob)

    def _load_write(self, w: WriteRow) -> Any:
        if not self._contextual:
            entry = self.values._items.get((w.type, w.payload))
            if entry is not None:
                return _use(entry)
        return super()._load_write(w)

    def _load(self, data: tuple[str, bytes], *where: str | int) -> Any:
        payload = data[1]
        if type(payload) is not bytes or len(payload) > self.values.max_bytes:
            return super()._load(data, *where)
        key = (data[0], payload, *where) if self._contextual else data
        value = self.values.get(key)
        if value is _MISS:
            value = super()._load(data, *where)
            entry = _template(value)
            if entry is not None:
                self.values.put(key, entry)
        return value

    def decode_skeleton(self, data: bytes, checkpoint_id: str | None = None) -> dict[str, Any]:
        if len(data) > self.skeletons.max_bytes:
            return super().decode_skeleton(data, checkpoint_id)
        skeleton = self.skeletons.get(data)
        if skeleton is _MISS:
            skeleton = super().decode_skeleton(data)
            entry = _template(skeleton, 1024, True)
            if entry is not None:
                self.skeletons.put(data, entry)
        if checkpoint_id is not None:
            skeleton["id"] = checkpoint_id
        return cast(dict[str, Any], skeleton)

    def decode_metadata(self, text: str) -> dict[str, Any]:  # type: ignore[override]
        if len(text) > self.metadata.max_bytes:
            return StorageCore.decode_metadata(text)
        metadata = self.metadata.get(text)
        if metadata is _MISS:
            metadata = StorageCore.decode_metadata(text)
            entry = _template(metadata, 1024)  # JSON: plain unless very nested
            if entry is not None:
                self.metadata.put(text, entry)
        return cast(dict[str, Any], metadata)

    # -- what a write teaches the caches ---------------------------------------------
    # Called as soon as a put or put_writes is planned, before anything else can
    # edit the values: the bytes were encoded from them a moment ago. Whether
    # the write then commits does not matter, since a template only says what
    # some bytes decode to.

    def learn_put(self, plan: PutPlan, checkpoint: Mapping[str, Any]) -> None:
        """Keep the plain values and the skeleton of a put just planned."""
        skeleton = plan.checkpoint.skeleton
        if (
            skeleton.startswith(_PLAIN_SKELETON)  # not the serializer's fallback
            and len(skeleton) <= self.skeletons.max_bytes
            and skeleton not in self.skeletons
        ):
            plain = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
            entry = _template(plain, 1024, True)
            if entry is not None:
                self.skeletons.put(skeleton, entry)
        if not self._exact:
            return
        values = checkpoint.get("channel_values") or {}
        for blob in plan.blobs:
            if blob.kind is BlobKind.VALUE and blob.channel in values:
                self._learn(blob, values[blob.channel])

    def learn_writes(self, rows: Iterable[WriteRow], writes: Sequence[tuple[str, Any]]) -> None:
        """Keep the plain values of a put_writes just planned (`rows` in the order of `writes`)."""
        if self._exact:
            for row, (_, value) in zip(rows, writes, strict=False):
                self._learn(row, value)

    def _learn(self, row: BlobRow | WriteRow, value: Any) -> None:
        payload = row.payload
        if row.type is None or payload is None or len(payload) > self.values.max_bytes:
            return
        key = (row.type, payload)
        if key not in self.values:
            entry = _template(value)
            if entry is not None:
                self.values.put(key, entry)
