"""Serializer protocol shared by every checkpointkit serializer and checkpointer.

A serializer speaks LangGraph's `SerializerProtocol`: ``dumps_typed(obj) ->
(type_tag, bytes)`` and ``loads_typed((type_tag, bytes)) -> obj``. It may also
speak the *contextual* variant below, which receives the place a value belongs
to (thread, namespace, checkpoint, channel...) as bytes. Checkpointers always
call the contextual functions of this module; a serializer that does not care
about the context (plain msgpack, compression) simply ignores it, while the
encryption wrapper binds it into the ciphertext as associated data, so a blob
copied to another place fails to decrypt.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langgraph.checkpoint.serde.base import SerializerProtocol

__all__ = [
    "ContextualSerializer",
    "SerializerProtocol",
    "dumps_in",
    "is_contextual",
    "loads_in",
    "place",
]


@runtime_checkable
class ContextualSerializer(Protocol):
    """A serializer whose output is bound to where the value is stored."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]: ...

    def loads_typed(self, data: tuple[str, bytes]) -> Any: ...

    def dumps_typed_in(self, obj: Any, context: bytes) -> tuple[str, bytes]: ...

    def loads_typed_in(self, data: tuple[str, bytes], context: bytes) -> Any: ...


def is_contextual(serde: SerializerProtocol) -> bool:
    """Tell whether `serde` binds values to their storage place."""
    return callable(getattr(serde, "dumps_typed_in", None))


def dumps_in(serde: SerializerProtocol, obj: Any, context: bytes) -> tuple[str, bytes]:
    """Serialize `obj` for storage at `context`."""
    if is_contextual(serde):
        return serde.dumps_typed_in(obj, context)  # type: ignore[attr-defined,no-any-return]
    return serde.dumps_typed(obj)


def loads_in(serde: SerializerProtocol, data: tuple[str, bytes], context: bytes) -> Any:
    """Deserialize a blob that was stored at `context`."""
    if is_contextual(serde):
        return serde.loads_typed_in(data, context)  # type: ignore[attr-defined]
    return serde.loads_typed(data)


def place(*parts: str | int) -> bytes:
    """Encode a storage place (e.g. thread, namespace, channel, version) as bytes.

    Parts are joined with a NUL separator and length-prefixed, so no two
    different tuples of parts can encode to the same bytes.
    """
    out = bytearray()
    for part in parts:
        raw = str(part).encode("utf-8", "surrogatepass")
        out += len(raw).to_bytes(4, "big")
        out += raw
    return bytes(out)
