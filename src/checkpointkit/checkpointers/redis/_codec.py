"""Encoding of rows as Redis hash values, readable in part by the server's Lua scripts.

Each value is a sequence of msgpack objects. The first few form a *header*
the Lua scripts read with ``cmsgpack.unpack_limit`` (only strings, integers
and nil: the Redis 7 cmsgpack cannot read msgpack's bin type); the last one is
the body, which only Python reads::

    checkpoint row: [needed blob suffixes] | escaped parent id | run id | body
                    body = [skeleton (bin), metadata JSON, ts]
    blob:           kind | escaped base version | body
                    body = [type, payload (bin), chain, seq, ops (bin), length, wrapped]
    pending writes: one record per write, concatenated; a record is the array
                    [task id, idx, body-bytes (as a raw str)] so Lua can step over it;
                    body-bytes = msgpack [task path, channel, type, payload (bin)]

The header of a checkpoint row lists the blob fields (without namespace) of
its channel versions, so a script fetches a checkpoint's values without
decoding its skeleton; blobs name their base so a script follows a list
delta's chain back to its root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from checkpointkit.checkpointers._rows import BlobKind, BlobRow, CheckpointRow, WriteRow
from checkpointkit.checkpointers.redis._keys import (
    blob_suffix,
    escape,
    parse_blob_field,
    parse_row_field,
    unescape,
)
from checkpointkit.errors import CorruptDataError

__all__ = [
    "decode_blob",
    "decode_row",
    "decode_writes",
    "encode_blob",
    "encode_row",
    "encode_write",
    "encode_writes",
    "row_needed",
    "text",
]

_UNPACK_ERRORS = (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException)
_KINDS = tuple(BlobKind)
# Bodies above this size are decoded from a memoryview instead of a copied slice.
_COPY_LIMIT = 4096


def text(value: bytes | str) -> str:
    """Decode a field name or member returned by Redis."""
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


# Blob headers are read by hand (an Unpacker costs more than the rest of a
# blob's decoding): a positive fixint and a nil or str, as `encode_blob`
# writes them; anything else is corrupt data.


def _str_or_nil(value: bytes, pos: int) -> tuple[str | None, int]:
    """Read the msgpack nil or str at `pos`; return it and the position after it."""
    tag = value[pos]
    if tag == 0xC0:
        return None, pos + 1
    if 0xA0 <= tag <= 0xBF:
        start, size = pos + 1, tag & 0x1F
    elif tag == 0xD9:
        start, size = pos + 2, value[pos + 1]
    elif tag == 0xDA:
        start, size = pos + 3, int.from_bytes(value[pos + 1 : pos + 3], "big")
    elif tag == 0xDB:
        start, size = pos + 5, int.from_bytes(value[pos + 1 : pos + 5], "big")
    else:
        raise ValueError(f"expected a string header, found msgpack type 0x{tag:02x}")
    end = start + size
    if end > len(value):
        raise ValueError("truncated header")
    return value[start:end].decode(), end


def _body(value: bytes, pos: int) -> Any:
    """Decode the last msgpack object of a value, which starts at `pos`."""
    data = value[pos:] if len(value) - pos <= _COPY_LIMIT else memoryview(value)[pos:]
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode_row(row: CheckpointRow, versions: Mapping[str, str]) -> bytes:
    """Encode a checkpoint row; `versions` are its channel versions (blob keys)."""
    # surrogatepass: metadata and run ids with lone surrogates round-trip, as in memory.
    packer = msgpack.Packer(autoreset=False, unicode_errors="surrogatepass")
    packer.pack([blob_suffix(channel, version) for channel, version in versions.items()])
    packer.pack(escape(row.parent_id) if row.parent_id else None)
    packer.pack(row.run_id)
    packer.pack([row.skeleton, row.metadata, row.ts])
    return packer.bytes()  # type: ignore[no-any-return]


def decode_row(thread_id: str, field: bytes | str, value: bytes) -> CheckpointRow:
    """Decode a checkpoint row stored under `field` of `thread_id`'s rows hash."""
    ns, checkpoint_id = parse_row_field(text(field))
    try:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogatepass")
        unpacker.feed(value)
        unpacker.skip()  # needed blob suffixes: for the scripts
        parent = unpacker.unpack()
        run_id = unpacker.unpack()
        skeleton, metadata, ts = unpacker.unpack()
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(
            f"checkpoint {checkpoint_id!r} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc
    return CheckpointRow(
        thread_id, ns, checkpoint_id, unescape(parent) if parent else None,
        bytes(skeleton), metadata, run_id, ts,
    )  # fmt: skip


def row_needed(value: bytes) -> list[str]:
    """Return the blob suffixes (escaped channel NUL escaped version) a row's header lists."""
    try:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(value)
        return [text(s) for s in unpacker.unpack()]
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(f"checkpoint row header is corrupt: {exc}") from exc


def encode_blob(blob: BlobRow) -> bytes:
    """Encode one channel version."""
    packer = msgpack.Packer(autoreset=False)
    packer.pack(int(blob.kind))
    packer.pack(escape(blob.base) if blob.base is not None else None)
    packer.pack(
        [blob.type, blob.payload, blob.chain, blob.seq, blob.ops, blob.length, blob.wrapped]
    )
    return packer.bytes()  # type: ignore[no-any-return]


def decode_blob(thread_id: str, field: bytes | str, value: bytes) -> BlobRow:
    """Decode a channel version stored under `field` of `thread_id`'s blobs hash."""
    # A read decodes every blob of a checkpoint: parse_blob_field and _str_or_nil
    # inlined for the common case (nothing escaped, no delta base).
    name = field.decode("utf-8", "surrogatepass") if isinstance(field, bytes) else field
    if "\x01" in name:
        ns, channel, version = parse_blob_field(name)
    else:
        ns, channel, version = name.split("\x00", 2)
    try:
        kind = value[0]
        if kind > 0x7F:  # a positive fixint
            raise ValueError(f"blob kind has msgpack type 0x{kind:02x}")
        base, pos = (None, 2) if value[1] == 0xC0 else _str_or_nil(value, 1)
        type_, payload, chain, seq, ops, length, wrapped = _body(value, pos)
        return BlobRow(
            thread_id, ns, channel, version, _KINDS[kind], type_, payload, chain, seq,
            unescape(base) if base is not None else None, ops, length, bool(wrapped),
        )  # fmt: skip
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(
            f"channel {channel!r} version {version!r} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc


def encode_write(write: WriteRow) -> bytes:
    """Encode one pending write as a record of a checkpoint's writes value."""
    return encode_writes((write,))


def encode_writes(writes: Iterable[WriteRow]) -> bytes:
    """Encode pending writes as records, concatenated as a writes value holds them."""
    body = msgpack.Packer(use_bin_type=True)
    # use_bin_type=False: the body travels as a msgpack str, which Lua can step over.
    records = msgpack.Packer(use_bin_type=False, autoreset=False)
    for w in writes:
        records.pack([w.task_id, w.idx, body.pack([w.task_path, w.channel, w.type, w.payload])])
    return records.bytes()  # type: ignore[no-any-return]


def decode_writes(thread_id: str, field: bytes | str, value: bytes | None) -> list[WriteRow]:
    """Decode the pending writes of the checkpoint stored under `field`."""
    if not value:
        return []
    ns, checkpoint_id = parse_row_field(text(field))
    rows = []
    try:
        unpacker = msgpack.Unpacker(raw=True)
        unpacker.feed(value)
        for task_id, idx, body in unpacker:
            task_path, channel, type_, payload = msgpack.unpackb(body, raw=False)
            rows.append(
                WriteRow(
                    thread_id,
                    ns,
                    checkpoint_id,
                    text(task_id),
                    task_path,
                    idx,
                    channel,
                    type_,
                    payload,
                )
            )
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(
            f"pending writes of checkpoint {checkpoint_id!r} in thread {thread_id!r} are "
            f"corrupt: {exc}"
        ) from exc
    return rows
