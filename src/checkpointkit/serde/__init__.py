"""Serializers for checkpoint values: typed msgpack, compression, encryption.

Every value a checkpointer stores passes through one of these. They speak
LangGraph's `SerializerProtocol`, so they also work with LangGraph's own savers.
"""

from __future__ import annotations

from checkpointkit.serde.base import (
    ContextualSerializer,
    SerializerProtocol,
    dumps_in,
    is_contextual,
    loads_in,
    place,
)

__all__ = [
    "ContextualSerializer",
    "SerializerProtocol",
    "default_serializer",
    "dumps_in",
    "is_contextual",
    "loads_in",
    "place",
]


def default_serializer() -> SerializerProtocol:
    """Return the serializer checkpointers use when none is given."""
    # Placeholder until the msgpack serializer lands (issue 3): LangGraph's own.
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer()
