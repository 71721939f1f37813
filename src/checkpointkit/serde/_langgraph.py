"""Read blobs written by LangGraph's `JsonPlusSerializer`, through our allowlist.

LangGraph writes the tags ``msgpack`` (current), ``json`` (checkpoints from
before its msgpack migration), ``null``, ``bytes``, ``bytearray`` and, when
``pickle_fallback`` is on, ``pickle``. Its msgpack ext codes (see
``langgraph/checkpoint/serde/jsonplus.py``) all carry ``(module, name,
args...)`` and are rebuilt by *calling* ``module.name`` after importing it.
Here the ``(module, name)`` pair is looked up first: stdlib types map to fixed
functions below, LangChain/LangGraph types to our builtin handlers, anything
else to the classes the user allowed. A pair found nowhere raises
`UnknownTypeError` before anything is imported or called, where LangGraph
would hand back the raw payload.

The ``json`` format holds LangChain ``lc: 1`` constructors (messages,
documents: matched by class name against the builtin types) and LangGraph
``lc: 2`` constructors (matched like the msgpack ones); ``lc: 1`` secrets and
"not implemented" placeholders are refused.
"""

from __future__ import annotations

import ipaddress
import json
import math
import pathlib
import re
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgpack
import msgpack.exceptions

from checkpointkit.errors import (
    CheckpointKitError,
    CorruptDataError,
    SerializationError,
    UnknownTypeError,
)
from checkpointkit.serde import _wire as w
from checkpointkit.serde._types import builtin_handler, unknown_type_error

if TYPE_CHECKING:
    from checkpointkit.serde.msgpack import MsgpackSerializer

__all__ = ["loads_langgraph"]

_Call = Callable[[list[Any], dict[str, Any], Any], Any]
_DELTA_SNAPSHOT_ID = 40


def _bad(module: str, name: str) -> CorruptDataError:
    return CorruptDataError(f"LangGraph blob holds a malformed {module}.{name}")


def _one(args: list[Any], kwargs: dict[str, Any], kind: type | tuple[type, ...]) -> Any:
    if len(args) != 1 or kwargs or not isinstance(args[0], kind):
        raise CorruptDataError(
            f"LangGraph blob holds a malformed value: expected one {kind} argument, "
            f"got {len(args)} positional and {len(kwargs)} keyword arguments"
        )
    return args[0]


def _no_method(method: Any) -> None:
    if method is not None:
        raise UnknownTypeError(f"refusing to call stored method {method!r}")


def _single(cls: Callable[[Any], Any], kind: type | tuple[type, ...]) -> _Call:
    def call(args: list[Any], kwargs: dict[str, Any], method: Any) -> Any:
        _no_method(method)
        return cls(_one(args, kwargs, kind))

    return call


def _hashable(value: Any) -> Any:
    # Set members are hashable, so every array inside one was a tuple that
    # LangGraph's msgpack turned into a list: turning it back is lossless.
    if type(value) is list:
        return tuple(_hashable(item) for item in value)
    return value


def _set_like(cls: type[set[Any]] | type[frozenset[Any]]) -> _Call:
    def call(args: list[Any], kwargs: dict[str, Any], method: Any) -> Any:
        _no_method(method)
        return cls(_hashable(item) for item in _one(args, kwargs, list))

    return call


def _positional(
    fn: Callable[..., Any], low: int, high: int, kind: type | tuple[type, ...]
) -> _Call:
    def call(args: list[Any], kwargs: dict[str, Any], method: Any) -> Any:
        _no_method(method)
        if kwargs or not low <= len(args) <= high or not all(isinstance(a, kind) for a in args):
            raise CorruptDataError(
                f"LangGraph blob holds a malformed {getattr(fn, '__qualname__', fn)} "
                f"(unexpected arguments)"
            )
        return fn(*args)

    return call


def _datetime(args: list[Any], kwargs: dict[str, Any], method: Any) -> datetime:
    if method != "fromisoformat":
        raise UnknownTypeError(f"refusing to call stored method datetime.{method}")
    return datetime.fromisoformat(_one(args, kwargs, str))


_TIME_KWARGS = frozenset({"hour", "minute", "second", "microsecond", "tzinfo", "fold"})


def _time(args: list[Any], kwargs: dict[str, Any], method: Any) -> time:
    _no_method(method)
    if len(args) > 5 or not kwargs.keys() <= _TIME_KWARGS:
        raise CorruptDataError("LangGraph blob holds a malformed time")
    return time(*args, **kwargs)


def _timezone(args: list[Any], kwargs: dict[str, Any], method: Any) -> timezone:
    _no_method(method)
    if kwargs or not 1 <= len(args) <= 2 or not isinstance(args[0], timedelta):
        raise CorruptDataError("LangGraph blob holds a malformed timezone")
    if len(args) == 2:
        if not isinstance(args[1], str):
            raise CorruptDataError("LangGraph blob holds a malformed timezone name")
        return timezone(args[0], args[1])
    return timezone(args[0])


def _fromhex(cls: type[bytes] | type[bytearray]) -> _Call:
    def call(args: list[Any], kwargs: dict[str, Any], method: Any) -> Any:
        if method != "fromhex":
            raise UnknownTypeError(f"refusing to call stored method {cls.__name__}.{method}")
        return cls.fromhex(_one(args, kwargs, str))

    return call


def _path(args: list[Any], kwargs: dict[str, Any], method: Any) -> pathlib.Path:
    _no_method(method)
    if kwargs or not all(isinstance(a, str) for a in args):
        raise CorruptDataError("LangGraph blob holds a malformed path")
    return pathlib.Path(*args)


_LG_STDLIB: dict[tuple[str, str], _Call] = {
    ("datetime", "datetime"): _datetime,
    ("datetime", "date"): _positional(date, 3, 3, int),
    ("datetime", "time"): _time,
    ("datetime", "timedelta"): _positional(timedelta, 0, 3, (int, float)),
    ("datetime", "timezone"): _timezone,
    ("uuid", "UUID"): _single(UUID, str),
    ("decimal", "Decimal"): _single(Decimal, str),
    ("builtins", "set"): _set_like(set),
    ("builtins", "frozenset"): _set_like(frozenset),
    ("builtins", "bytes"): _fromhex(bytes),
    ("builtins", "bytearray"): _fromhex(bytearray),
    ("collections", "deque"): _single(deque, list),
    ("zoneinfo", "ZoneInfo"): _single(ZoneInfo, str),
    ("re", "compile"): _positional(re.compile, 1, 2, (str, bytes, int)),
    **{
        (module, name): _path
        for module in ("pathlib", "pathlib._local")
        for name in ("Path", "PosixPath", "WindowsPath")
    },
    **{
        ("ipaddress", cls.__name__): _single(cls, str)
        for cls in (
            ipaddress.IPv4Address,
            ipaddress.IPv4Interface,
            ipaddress.IPv4Network,
            ipaddress.IPv6Address,
            ipaddress.IPv6Interface,
            ipaddress.IPv6Network,
        )
    },
}


def _construct(
    serializer: MsgpackSerializer,
    module: Any,
    name: Any,
    args: list[Any],
    kwargs: dict[str, Any],
    method: Any = None,
) -> Any:
    """Rebuild ``module.name(*args, **kwargs)`` if, and only if, it is allowed."""
    if type(module) is not str or type(name) is not str:
        raise CorruptDataError("LangGraph blob names a type with a non-string")
    if type(args) is not list or type(kwargs) is not dict:
        raise _bad(module, name)
    call = _LG_STDLIB.get((module, name))
    if call is not None:
        return call(args, kwargs, method)
    handler = serializer._handler_for_lg_name(module, name)  # raises if not allowed
    return handler.from_call(args, kwargs)


class _LgMsgpackDecoding:
    """One decode of a LangGraph ``msgpack`` blob, with a nesting cap."""

    __slots__ = ("depth", "serializer")

    def __init__(self, serializer: MsgpackSerializer) -> None:
        self.serializer = serializer
        self.depth = 0

    def unpack(self, data: bytes) -> Any:
        if self.depth >= self.serializer.max_depth:
            raise CorruptDataError("LangGraph blob nests typed values too deeply")
        self.depth += 1
        try:
            return msgpack.unpackb(
                data,
                ext_hook=self.hook,
                raw=False,
                strict_map_key=False,
                unicode_errors="surrogatepass",
                timestamp=3,
            )
        finally:
            self.depth -= 1

    def hook(self, code: int, data: bytes) -> Any:
        if code == w.LG_EXT_DELTA_SNAPSHOT:
            value = self.unpack(data)
            return builtin_handler(_DELTA_SNAPSHOT_ID).decode([_DELTA_SNAPSHOT_ID, [value]])
        if code == w.LG_EXT_NUMPY_ARRAY:
            return _numpy_array(self.unpack(data))
        if not w.LG_EXT_CONSTRUCTOR_SINGLE_ARG <= code <= w.LG_EXT_PYDANTIC_V2:
            raise CorruptDataError(f"LangGraph blob holds unknown ext code {code}")
        tup = self.unpack(data)
        if type(tup) is not list or len(tup) not in (3, 4):
            raise CorruptDataError(f"LangGraph blob holds a malformed ext {code}")
        module, name, arg = tup[0], tup[1], tup[2]
        if code == w.LG_EXT_CONSTRUCTOR_SINGLE_ARG:
            return _construct(self.serializer, module, name, [arg], {})
        if code == w.LG_EXT_CONSTRUCTOR_POS_ARGS:
            return _construct(self.serializer, module, name, arg, {})
        if code == w.LG_EXT_METHOD_SINGLE_ARG:
            method = tup[3] if len(tup) == 4 else None
            return _construct(self.serializer, module, name, [arg], {}, method)
        # Keyword constructors and pydantic v1/v2 dumps all carry a field map.
        return _construct(self.serializer, module, name, [], arg)


def _numpy_array(meta: Any) -> Any:
    from checkpointkit.serde._scientific import _import, _plain_dtype

    np = _import("numpy")
    if type(meta) is not list or len(meta) != 4:
        raise CorruptDataError("LangGraph blob holds a malformed numpy array")
    dtype_str, shape, order, buf = meta
    if type(dtype_str) is not str or type(buf) is not bytes or order not in ("C", "F"):
        raise CorruptDataError("LangGraph blob holds a malformed numpy array")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise CorruptDataError("LangGraph blob holds a malformed numpy array shape")
    dtype = _plain_dtype(np, dtype_str)
    if dtype.hasobject or dtype.itemsize == 0 or len(buf) != math.prod(shape) * dtype.itemsize:
        raise CorruptDataError("LangGraph blob holds a malformed numpy array")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy(order="K")


def _load_json(serializer: MsgpackSerializer, payload: bytes) -> Any:
    def revive(value: dict[str, Any]) -> Any:
        lc = value.get("lc")
        if lc not in (1, 2) or type(lc) is not int:
            return value
        kind, ident = value.get("type"), value.get("id")
        if type(ident) is not list or not ident or not all(type(p) is str for p in ident):
            return value
        if lc == 2 and kind == "constructor" and len(ident) >= 2:
            args = value.get("args") or []
            kwargs = value.get("kwargs") or {}
            module, name = ".".join(ident[:-1]), ident[-1]
            method = value.get("method")
            if method is not None and (module, name) not in _LG_STDLIB:
                method = None  # pydantic construct hints: we never dispatch on them
            return _construct(serializer, module, name, args, kwargs, method)
        if lc == 1 and kind == "constructor":
            type_id = w.LC1_BUILTIN_NAMES.get(ident[-1])
            if ident[0] not in w.LC1_NAMESPACES or type_id is None:
                raise unknown_type_error(".".join(ident))
            kwargs = value.get("kwargs") or {}
            if type(kwargs) is not dict:
                raise CorruptDataError(f"LangChain object {ident[-1]} has malformed kwargs")
            return builtin_handler(type_id).from_call([], kwargs)
        if lc == 1 and kind in ("secret", "not_implemented"):
            raise UnknownTypeError(
                f"refusing to revive a LangChain {kind} placeholder ({'.'.join(ident)})"
            )
        return value

    return json.loads(payload, object_hook=revive)


def loads_langgraph(serializer: MsgpackSerializer, tag: str, payload: bytes) -> Any:
    """Decode a blob LangGraph's `JsonPlusSerializer` wrote under `tag`.

    Raises:
        UnknownTypeError: the blob names a type that is not allowed, or is a
            pickle while pickle is not enabled.
        CorruptDataError: the blob is malformed.
        SerializationError: the tag is not one LangGraph writes.
    """
    if tag == w.TAG_LG_NULL:
        return None
    if tag == w.TAG_LG_BYTES:
        return payload
    if tag == w.TAG_LG_BYTEARRAY:
        return bytearray(payload)
    if tag == w.TAG_LG_PICKLE:
        return serializer._unpickle(payload)
    if tag not in (w.TAG_LG_MSGPACK, w.TAG_LG_JSON):
        hint = ""
        if tag.endswith((w.SUFFIX_ZSTD, w.SUFFIX_AESGCM)):
            hint = (
                "; it was written through CompressedSerializer/EncryptedSerializer, "
                "so read it through the same wrappers"
            )
        raise SerializationError(f"unknown serialization tag {tag!r}{hint}")
    try:
        if tag == w.TAG_LG_MSGPACK:
            return _LgMsgpackDecoding(serializer).unpack(payload)
        return _load_json(serializer, payload)
    except CheckpointKitError:
        raise
    except (RecursionError, msgpack.exceptions.StackError) as exc:
        raise CorruptDataError(f"LangGraph {tag} blob is nested too deeply") from exc
    except Exception as exc:
        raise CorruptDataError(f"cannot decode LangGraph {tag} blob: {exc!r}") from exc
