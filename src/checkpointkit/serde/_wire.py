"""Wire constants of the ``ckmsgpack`` format: tags, ext codes, builtin type ids.

Everything here is part of the stored format. Numbers are never reused or
renumbered: a blob written years ago must still decode. New types get new
numbers; a change that cannot be expressed that way gets a new tag.
"""

from __future__ import annotations

from typing import Final

# -- tags -------------------------------------------------------------------

#: Tag of blobs written by `MsgpackSerializer`. Deliberately distinct from
#: LangGraph's ``msgpack`` tag, so LangGraph's `JsonPlusSerializer` refuses our
#: blobs loudly instead of silently turning unknown ext codes into ``None``.
TAG_CKMSGPACK: Final = "ckmsgpack"

#: Tags written by LangGraph's `JsonPlusSerializer` that we can read.
TAG_LG_MSGPACK: Final = "msgpack"
TAG_LG_JSON: Final = "json"
TAG_LG_NULL: Final = "null"
TAG_LG_BYTES: Final = "bytes"
TAG_LG_BYTEARRAY: Final = "bytearray"
TAG_LG_PICKLE: Final = "pickle"

#: Suffixes appended by the wrapping serializers.
SUFFIX_ZSTD: Final = "+zstd"
SUFFIX_AESGCM: Final = "+aesgcm"

# -- ext codes of the ckmsgpack format ---------------------------------------
# Codes start at 16 so that they never overlap LangGraph's 0-7, even though the
# distinct tag already keeps the two formats apart.

EXT_TUPLE: Final = 16  # payload: array of items
EXT_SET: Final = 17  # payload: array of items
EXT_FROZENSET: Final = 18  # payload: array of items
EXT_BIGINT: Final = 19  # payload (raw): signed big-endian two's complement
EXT_BYTEARRAY: Final = 20  # payload (raw): the bytes
EXT_DATETIME: Final = 21  # payload: [y, mo, d, h, mi, s, us, (tz|nil), (fold)]
EXT_DATE: Final = 22  # payload (raw): proleptic ordinal, 4 bytes big-endian
EXT_TIME: Final = 23  # payload: [h, mi, s, us, (tz|nil), (fold)]
EXT_TIMEDELTA: Final = 24  # payload: [days, seconds, microseconds]
EXT_TIMEZONE: Final = 25  # payload: [offset in microseconds, (name)]
EXT_ZONEINFO: Final = 26  # payload (raw): the IANA key, UTF-8
EXT_UUID: Final = 27  # payload (raw): the 16 bytes
EXT_DECIMAL: Final = 28  # payload (raw): str(value), ASCII
EXT_PATH: Final = 29  # payload: [path kind, str(path)]
EXT_PATTERN: Final = 30  # payload: [pattern (str | bytes), flags]
EXT_IPADDRESS: Final = 31  # payload: [ip kind, str(value)]
EXT_DEQUE: Final = 32  # payload: [items, maxlen | nil]
EXT_OBJECT: Final = 33  # payload: [type ref (int builtin id | str wire name), *state]
EXT_NDARRAY: Final = 34  # payload: [dtype str, shape, raw bytes | object items]
EXT_NPSCALAR: Final = 35  # payload: [dtype str, raw bytes]
EXT_PANDAS: Final = 36  # payload: [pandas kind, ...] (see _scientific.py)
EXT_PICKLE: Final = 37  # payload (raw): pickle; read only with unsafe_allow_pickle

# Path kinds of EXT_PATH. Concrete paths are rebuilt as `pathlib.Path`, i.e.
# the concrete class of the reading platform.
PATH_CONCRETE: Final = 0
PATH_PURE_POSIX: Final = 1
PATH_PURE_WINDOWS: Final = 2

# -- builtin type ids of EXT_OBJECT --------------------------------------------
# (public import module, attribute name). The import module is the *public*
# path, so LangChain moving a class between private modules does not break old
# blobs. Only these fixed modules are ever imported while decoding.

BUILTIN_TYPES: Final[dict[int, tuple[str, str]]] = {
    1: ("langchain_core.messages", "HumanMessage"),
    2: ("langchain_core.messages", "AIMessage"),
    3: ("langchain_core.messages", "ToolMessage"),
    4: ("langchain_core.messages", "SystemMessage"),
    5: ("langchain_core.messages", "ChatMessage"),
    6: ("langchain_core.messages", "FunctionMessage"),
    7: ("langchain_core.messages", "RemoveMessage"),
    8: ("langchain_core.messages", "HumanMessageChunk"),
    9: ("langchain_core.messages", "AIMessageChunk"),
    10: ("langchain_core.messages", "ToolMessageChunk"),
    11: ("langchain_core.messages", "SystemMessageChunk"),
    12: ("langchain_core.messages", "ChatMessageChunk"),
    13: ("langchain_core.messages", "FunctionMessageChunk"),
    14: ("langchain_core.messages", "BaseMessage"),
    15: ("langchain_core.messages", "BaseMessageChunk"),
    16: ("langchain_core.documents", "Document"),
    32: ("langgraph.types", "Send"),
    33: ("langgraph.types", "Interrupt"),
    34: ("langgraph.types", "Command"),
    35: ("langgraph.types", "Overwrite"),
    36: ("langgraph.types", "TimeoutPolicy"),
    37: ("langgraph.types", "StateSnapshot"),
    38: ("langgraph.types", "PregelTask"),
    40: ("langgraph.checkpoint.serde.types", "_DeltaSnapshot"),
    41: ("langgraph.store.base", "Item"),
    42: ("langgraph.store.base", "GetOp"),
}

# -- LangGraph's JsonPlusSerializer msgpack ext codes (read only) --------------
LG_EXT_CONSTRUCTOR_SINGLE_ARG: Final = 0
LG_EXT_CONSTRUCTOR_POS_ARGS: Final = 1
LG_EXT_CONSTRUCTOR_KW_ARGS: Final = 2
LG_EXT_METHOD_SINGLE_ARG: Final = 3
LG_EXT_PYDANTIC_V1: Final = 4
LG_EXT_PYDANTIC_V2: Final = 5
LG_EXT_NUMPY_ARRAY: Final = 6
LG_EXT_DELTA_SNAPSHOT: Final = 7

#: (module, name) pairs LangGraph writes for our builtin types, mapped to their
#: builtin id. Module names are the *defining* modules at the time of writing.
LG_BUILTIN_NAMES: Final[dict[tuple[str, str], int]] = {
    ("langchain_core.messages.human", "HumanMessage"): 1,
    ("langchain_core.messages.ai", "AIMessage"): 2,
    ("langchain_core.messages.tool", "ToolMessage"): 3,
    ("langchain_core.messages.system", "SystemMessage"): 4,
    ("langchain_core.messages.chat", "ChatMessage"): 5,
    ("langchain_core.messages.function", "FunctionMessage"): 6,
    ("langchain_core.messages.modifier", "RemoveMessage"): 7,
    ("langchain_core.messages.human", "HumanMessageChunk"): 8,
    ("langchain_core.messages.ai", "AIMessageChunk"): 9,
    ("langchain_core.messages.tool", "ToolMessageChunk"): 10,
    ("langchain_core.messages.system", "SystemMessageChunk"): 11,
    ("langchain_core.messages.chat", "ChatMessageChunk"): 12,
    ("langchain_core.messages.function", "FunctionMessageChunk"): 13,
    ("langchain_core.messages.base", "BaseMessage"): 14,
    ("langchain_core.messages.base", "BaseMessageChunk"): 15,
    ("langchain_core.documents.base", "Document"): 16,
    ("langgraph.types", "Send"): 32,
    ("langgraph.constants", "Send"): 32,
    ("langgraph.types", "Interrupt"): 33,
    ("langgraph.types", "Command"): 34,
    ("langgraph.types", "Overwrite"): 35,
    ("langgraph.types", "TimeoutPolicy"): 36,
    ("langgraph.types", "StateSnapshot"): 37,
    ("langgraph.types", "PregelTask"): 38,
    ("langgraph.store.base", "Item"): 41,
    ("langgraph.store.base", "GetOp"): 42,
}

#: LangChain ``lc: 1`` serialization ids (old ``json`` checkpoints) map to a
#: builtin id by class name; the id must start with one of these namespaces.
LC1_NAMESPACES: Final = frozenset({"langchain", "langchain_core"})
LC1_BUILTIN_NAMES: Final[dict[str, int]] = {
    name: type_id
    for type_id, (module, name) in BUILTIN_TYPES.items()
    if module.startswith("langchain_core.")
}
