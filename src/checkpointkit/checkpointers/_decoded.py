"""Decoded plain values kept per process, so a read decodes only what it has not seen.

A checkpoint read decodes every channel value, most of them unchanged since
the last read, its skeleton and its metadata. `StorageCore` keeps values made
only of plain data (dicts, lists, tuples, strings, numbers, bytes, booleans,
None) here as *templates*, keyed by their stored bytes (or JSON text), for
every backend: the same bytes always decode to the same value, so a template
can never be stale, whichever process wrote, deleted or re-created the row.
Each read gets a fresh copy of the template, never the template itself, so a
caller that edits what it read changes nothing another read returns. Each
template comes with its *plan* (which of its parts are containers), so a copy
is a few ``dict.copy()`` calls rather than a walk over every value.

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
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import msgpack

from checkpointkit.errors import CorruptDataError

if TYPE_CHECKING:
    from checkpointkit.checkpointers.base import StorageCore

__all__ = [
    "BoundedMap",
    "DecodedCache",
    "DecodedCaches",
    "MetadataDecoder",
    "parse_metadata",
    "plain_copy",
]

V = TypeVar("V")

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


def fresh(entry: Template) -> Any:
    """Return a copy of a template no caller holds yet."""
    template, plan = entry
    return template if plan is None else _fresh(template, plan)


class BoundedMap(Generic[V]):
    """A bounded map from stored bytes to what they decode to.

    Lookups take no lock (a dict read is atomic); inserts do, and drop the
    oldest eighth of the entries when the map is full.

    Args:
        size: How many entries to keep (0 turns the map off).
        max_bytes: Longer stored values are not kept.
    """

    def __init__(self, size: int = 4096, max_bytes: int = 2048) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.entries: dict[Any, V] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: Any) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def put(self, key: Any, entry: V) -> None:
        """Keep `entry` under `key`."""
        if not self.size:
            return
        with self._lock:
            entries = self.entries
            if len(entries) >= self.size:
                for old in list(itertools.islice(entries, max(1, self.size // 8))):
                    del entries[old]
            entries[key] = entry

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()


class DecodedCache(BoundedMap[Template]):
    """A `BoundedMap` of templates: plain values no caller holds, copied on every read."""

    def get(self, key: Any) -> Any:
        """Return a fresh copy of the value stored under `key`, or the miss marker."""
        entry = self.entries.get(key)
        return _MISS if entry is None else fresh(entry)


class DecodedCaches:
    """The decoded values, skeletons and metadata of one `StorageCore`.

    Args:
        enabled: Keep anything at all (off: every read decodes).
        exact: The serializer gives plain data back exactly as it was given,
            so values this process writes can be kept as they are put.
    """

    def __init__(self, *, enabled: bool = True, exact: bool = False) -> None:
        self.enabled = enabled
        self.values = DecodedCache(4096 if enabled else 0, 2048)
        self.skeletons = DecodedCache(512 if enabled else 0, 16384)
        self.metadata = DecodedCache(512 if enabled else 0, 4096)
        self.exact = exact

    def keep_value(self, key: Any, value: Any) -> None:
        """Keep a copy of a value just decoded from the stored bytes `key` names."""
        if self.values.size:
            entry = _template(value)
            if entry is not None:
                self.values.put(key, entry)

    def skeleton(self, data: bytes, decode: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
        """Return a fresh copy of the skeleton `data` decodes to (without its id)."""
        if type(data) is not bytes or len(data) > self.skeletons.max_bytes:
            return decode(data)  # a buffer may change: only bytes are keys
        skeleton = self.skeletons.get(data)
        if skeleton is _MISS:
            skeleton = decode(data)
            if self.skeletons.size:
                entry = _template(skeleton, 1024, True)
                if entry is not None:
                    self.skeletons.put(data, entry)
        return cast(dict[str, Any], skeleton)

    def metadata_of(self, text: str) -> dict[str, Any]:
        """Return a fresh copy of the metadata JSON `text` decodes to."""
        if len(text) > self.metadata.max_bytes:
            return parse_metadata(text)
        metadata = self.metadata.get(text)
        if metadata is _MISS:
            metadata = parse_metadata(text)
            if self.metadata.size:
                entry = _template(metadata, 1024)  # JSON: plain unless very nested
                if entry is not None:
                    self.metadata.put(text, entry)
        return cast(dict[str, Any], metadata)

    # -- what a write teaches the caches ---------------------------------------------
    # Called while a put or put_writes is planned, right after each value is
    # encoded and before anything else can edit it. Whether the write then
    # commits does not matter: a template only says what some bytes decode to.

    def learn_skeleton(self, data: bytes, checkpoint: Mapping[str, Any]) -> None:
        """Keep the skeleton a put just encoded to `data`."""
        if (
            self.skeletons.size
            and data.startswith(_PLAIN_SKELETON)  # not the serializer's fallback
            and len(data) <= self.skeletons.max_bytes
            and data not in self.skeletons
        ):
            plain = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
            entry = _template(plain, 1024, True)
            if entry is not None:
                self.skeletons.put(data, entry)

    def learn_value(self, tag: str, payload: bytes, value: Any) -> None:
        """Keep a value a put or put_writes just encoded (without its place) to `payload`."""
        if not self.exact or not self.values.size or len(payload) > self.values.max_bytes:
            return
        key = (tag, payload)
        if key not in self.values:
            entry = _template(value)
            if entry is not None:
                self.values.put(key, entry)


def parse_metadata(text: str) -> dict[str, Any]:
    """Parse stored checkpoint metadata (JSON text), without the cache."""
    try:
        return cast(dict[str, Any], json.loads(text))
    except ValueError as exc:
        raise CorruptDataError(f"stored checkpoint metadata is not JSON: {exc}") from exc


class MetadataDecoder:
    """`StorageCore.decode_metadata`: through a core, a fresh copy from its cache.

    Through the class (``StorageCore.decode_metadata(text)``, as backends'
    summary helpers call it without a core at hand) it only parses the text.
    """

    def __get__(
        self, core: StorageCore | None, owner: type | None = None
    ) -> Callable[[str], dict[str, Any]]:
        if core is None:
            return parse_metadata
        return core.decoded.metadata_of
