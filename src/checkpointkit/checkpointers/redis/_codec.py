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

from collections.abc import Mapping

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
    "row_needed",
    "text",
]

_UNPACK_ERRORS = (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException)


def text(value: bytes | str) -> str:
    """Decode a field name or member returned by Redis."""
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def encode_row(row: CheckpointRow, versions: Mapping[str, str]) -> bytes:
    """Encode a checkpoint row; `versions` are its channel versions (blob keys)."""
    needed = [blob_suffix(channel, version) for channel, version in versions.items()]
    parent = escape(row.parent_id) if row.parent_id else None
    return b"".join(
        (
            msgpack.packb(needed),
            msgpack.packb(parent),
            msgpack.packb(row.run_id),
            msgpack.packb([row.skeleton, row.metadata, row.ts], use_bin_type=True),
        )
    )


def _unpacker(value: bytes) -> msgpack.Unpacker:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(value)
    return unpacker


def decode_row(thread_id: str, field: bytes | str, value: bytes) -> CheckpointRow:
    """Decode a checkpoint row stored under `field` of `thread_id`'s rows hash."""
    ns, checkpoint_id = parse_row_field(text(field))
    try:
        unpacker = _unpacker(value)
        unpacker.unpack()  # needed blob suffixes: for the scripts
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
        needed = _unpacker(value).unpack()
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(f"checkpoint row header is corrupt: {exc}") from exc
    return [text(s) for s in needed]


def encode_blob(blob: BlobRow) -> bytes:
    """Encode one channel version."""
    return b"".join(
        (
            msgpack.packb(int(blob.kind)),
            msgpack.packb(escape(blob.base) if blob.base is not None else None),
            msgpack.packb(
                [
                    blob.type,
                    blob.payload,
                    blob.chain,
                    blob.seq,
                    blob.ops,
                    blob.length,
                    blob.wrapped,
                ],
                use_bin_type=True,
            ),
        )
    )


def decode_blob(thread_id: str, field: bytes | str, value: bytes) -> BlobRow:
    """Decode a channel version stored under `field` of `thread_id`'s blobs hash."""
    ns, channel, version = parse_blob_field(text(field))
    try:
        unpacker = _unpacker(value)
        kind = BlobKind(unpacker.unpack())
        base = unpacker.unpack()
        type_, payload, chain, seq, ops, length, wrapped = unpacker.unpack()
    except _UNPACK_ERRORS as exc:
        raise CorruptDataError(
            f"channel {channel!r} version {version!r} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc
    return BlobRow(
        thread_id, ns, channel, version, kind, type_, payload, chain, seq,
        unescape(base) if base is not None else None, ops, length, bool(wrapped),
    )  # fmt: skip


def encode_write(write: WriteRow) -> bytes:
    """Encode one pending write as a record of a checkpoint's writes value."""
    body = msgpack.packb(
        [write.task_path, write.channel, write.type, write.payload], use_bin_type=True
    )
    # use_bin_type=False: the body travels as a msgpack str, which Lua can step over.
    return msgpack.packb([write.task_id, write.idx, body], use_bin_type=False)  # type: ignore[no-any-return]


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
