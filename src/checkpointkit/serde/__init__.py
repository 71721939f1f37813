"""Serializers for checkpoint values: typed msgpack, compression, encryption.

Every value a checkpointer stores passes through one of these. They speak
LangGraph's `SerializerProtocol` (``dumps_typed(obj) -> (tag, bytes)`` and
``loads_typed``), so they also work with LangGraph's own savers, and they
compose, each wrapper extending the tag::

    EncryptedSerializer(CompressedSerializer(MsgpackSerializer()))
    # tags: "ckmsgpack", "ckmsgpack+zstd", "ckmsgpack+aesgcm", "ckmsgpack+zstd+aesgcm"

- `MsgpackSerializer` (the default) writes typed msgpack and reads it back
  only for allowlisted types (builtin ones plus those allowed with
  ``allow=[...]`` or `register_type`); it also reads LangGraph's formats.
- `CompressedSerializer` adds zstd above a size threshold (extra ``zstd``).
- `EncryptedSerializer` adds AES-256-GCM bound to the storage place, with key
  rotation, refusing plaintext by default (extra ``encryption``).

The optional packages are imported when a wrapper is constructed, so this
module imports without them.
"""

from __future__ import annotations

from checkpointkit.serde._types import register_type
from checkpointkit.serde.base import (
    ContextualSerializer,
    SerializerProtocol,
    dumps_in,
    is_contextual,
    loads_in,
    place,
)
from checkpointkit.serde.compression import CompressedSerializer
from checkpointkit.serde.encryption import EncryptedSerializer
from checkpointkit.serde.msgpack import MsgpackSerializer

__all__ = [
    "CompressedSerializer",
    "ContextualSerializer",
    "EncryptedSerializer",
    "MsgpackSerializer",
    "SerializerProtocol",
    "default_serializer",
    "dumps_in",
    "is_contextual",
    "loads_in",
    "place",
    "register_type",
]


def default_serializer() -> SerializerProtocol:
    """Return the serializer checkpointers use when none is given: a `MsgpackSerializer`."""
    return MsgpackSerializer()
