"""The skeleton codec: a checkpoint without its channel values, compactly.

Every checkpoint row holds its skeleton (format version, timestamp, channel
versions, versions seen by each node), so its size is paid at every step.
It holds only plain values, so it is packed with msgpack directly, not the
pluggable serializer, with two savings: the checkpoint id is left out (the
row has it), and versions made by `next_version` ("<32 digits>.<random
float>", 51 characters) are packed as an integer and a double (ext type 1,
about 12 bytes), which reformat to exactly the same string.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, cast

import msgpack

from checkpointkit.errors import CorruptDataError

__all__ = ["decode_skeleton", "encode_skeleton"]

_TAG = "ck-skeleton"
_EXT_VERSION = 1
_VERSION = struct.Struct(">Qd")
_VERSION_KEYS = ("channel_versions", "versions_seen")


def _format_version(n: int, h: float) -> str:
    return f"{n:032}.{h:016}"


@functools.lru_cache(maxsize=8192)
def _pack_version(value: Any) -> Any:
    # Cached: a thread's unchanged channels repeat the same versions at every step.
    if isinstance(value, str) and len(value) > 33 and value[32] == ".":
        try:
            n, h = int(value[:32]), float(value[33:])
        except ValueError:
            return value
        if 0 <= n < 2**64 and _format_version(n, h) == value:
            return msgpack.ExtType(_EXT_VERSION, _VERSION.pack(n, h))
    return value


def _pack_versions(mapping: Any) -> Any:
    if not isinstance(mapping, dict):
        return mapping
    return {
        k: _pack_versions(v) if isinstance(v, dict) else _pack_version(v)
        for k, v in mapping.items()
    }


@functools.lru_cache(maxsize=8192)
def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_VERSION and len(data) == _VERSION.size:
        return _format_version(*_VERSION.unpack(data))
    raise CorruptDataError(f"unknown skeleton extension {code}")


def encode_skeleton(
    checkpoint: dict[str, Any], fallback: Callable[[dict[str, Any]], tuple[str, bytes]]
) -> bytes:
    """Pack a checkpoint's skeleton; `fallback` serializes one holding objects."""
    skeleton = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
    for key in _VERSION_KEYS:
        if key in skeleton:
            skeleton[key] = _pack_versions(skeleton[key])
    try:
        return cast(bytes, msgpack.packb([_TAG, skeleton], use_bin_type=True))
    except (TypeError, ValueError, OverflowError):
        # Legacy checkpoints may hold objects (pending sends): use the serde.
        plain = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
        tag, data = fallback(plain)
        return cast(bytes, msgpack.packb([tag, data], use_bin_type=True))


def decode_skeleton(
    data: bytes, checkpoint_id: str | None, fallback: Callable[[tuple[str, bytes]], Any]
) -> dict[str, Any]:
    """Unpack a skeleton, putting back the checkpoint id when given."""
    try:
        tag, body = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
        skeleton = body if tag == _TAG else fallback((tag, body))
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise CorruptDataError(f"stored checkpoint skeleton is corrupt: {exc}") from exc
    if not isinstance(skeleton, dict):
        raise CorruptDataError("stored checkpoint skeleton is not a mapping")
    if checkpoint_id is not None:
        skeleton["id"] = checkpoint_id
    return cast(dict[str, Any], skeleton)
