"""Standard-library types of the ``ckmsgpack`` format: one ext code per type.

Each encoder takes ``pack`` (which serializes a nested value with the same
rules, so containers can hold any supported value) and the object, and returns
an `msgpack.ExtType`. Each decoder takes ``unpack`` and the raw ext payload.
Decoders check shapes and types and let the constructors validate ranges; the
caller turns any exception into `CorruptDataError`.
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
import struct
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from msgpack import ExtType

from checkpointkit.errors import CorruptDataError, SerializationError
from checkpointkit.serde import _wire as w

__all__ = [
    "STDLIB_DECODERS",
    "STDLIB_ENCODERS",
    "Decoder",
    "Encoder",
    "Pack",
    "Unpack",
    "ext",
]

Pack = Callable[[Any], bytes]
Unpack = Callable[[bytes], Any]
Encoder = Callable[[Pack, Any], Any]
Decoder = Callable[[Unpack, bytes], Any]

_tuple_new: Any = tuple.__new__


def ext(code: int, data: bytes) -> ExtType:
    """Build an `ExtType` without its Python-level argument checks (hot path)."""
    return _tuple_new(ExtType, (code, data))  # type: ignore[no-any-return]


_ORDINAL = struct.Struct(">I")
_IP_CLASSES: tuple[type, ...] = (
    ipaddress.IPv4Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv4Network,
    ipaddress.IPv6Address,
    ipaddress.IPv6Interface,
    ipaddress.IPv6Network,
)
_ONE_US = timedelta(microseconds=1)


def _list(value: Any, what: str, low: int = 0, high: int = 1 << 62) -> list[Any]:
    if type(value) is not list or not low <= len(value) <= high:
        raise CorruptDataError(f"stored {what} is malformed")
    return value


def _int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise CorruptDataError(f"stored {what} is malformed: {value!r} is not an integer")
    return value


def _tz(value: Any) -> tzinfo | None:
    if value is not None and not isinstance(value, tzinfo):
        raise CorruptDataError(f"stored time zone is a {type(value).__name__}")
    return value


# -- containers ----------------------------------------------------------------------


def _enc_tuple(pack: Pack, obj: tuple[Any, ...]) -> ExtType:
    return ext(w.EXT_TUPLE, pack(list(obj)))


def _dec_tuple(unpack: Unpack, data: bytes) -> tuple[Any, ...]:
    return tuple(_list(unpack(data), "tuple"))


def _enc_set(pack: Pack, obj: set[Any]) -> ExtType:
    return ext(w.EXT_SET, pack(list(obj)))


def _dec_set(unpack: Unpack, data: bytes) -> set[Any]:
    return set(_list(unpack(data), "set"))


def _enc_frozenset(pack: Pack, obj: frozenset[Any]) -> ExtType:
    return ext(w.EXT_FROZENSET, pack(list(obj)))


def _dec_frozenset(unpack: Unpack, data: bytes) -> frozenset[Any]:
    return frozenset(_list(unpack(data), "frozenset"))


def _enc_deque(pack: Pack, obj: deque[Any]) -> ExtType:
    return ext(w.EXT_DEQUE, pack([list(obj), obj.maxlen]))


def _dec_deque(unpack: Unpack, data: bytes) -> deque[Any]:
    items, maxlen = _list(unpack(data), "deque", 2, 2)
    if maxlen is not None:
        _int(maxlen, "deque length")
    return deque(_list(items, "deque"), maxlen)


# -- numbers and bytes ---------------------------------------------------------------


def _enc_int(pack: Pack, obj: int) -> ExtType:
    # msgpack only calls us for ints beyond 64 bits.
    return ext(w.EXT_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))


def _dec_int(unpack: Unpack, data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def _dec_bytearray(unpack: Unpack, data: bytes) -> bytearray:
    return bytearray(data)


def _enc_decimal(pack: Pack, obj: Decimal) -> ExtType:
    return ext(w.EXT_DECIMAL, str(obj).encode("ascii"))


def _dec_decimal(unpack: Unpack, data: bytes) -> Decimal:
    return Decimal(data.decode("ascii"))


def _enc_uuid(pack: Pack, obj: UUID) -> ExtType:
    return ext(w.EXT_UUID, obj.bytes)


def _dec_uuid(unpack: Unpack, data: bytes) -> UUID:
    return UUID(bytes=data)


# -- dates and times -----------------------------------------------------------------


def _enc_datetime(pack: Pack, obj: datetime) -> ExtType:
    parts: list[Any] = [
        obj.year,
        obj.month,
        obj.day,
        obj.hour,
        obj.minute,
        obj.second,
        obj.microsecond,
    ]
    if obj.fold:
        parts += [obj.tzinfo, obj.fold]
    elif obj.tzinfo is not None:
        parts.append(obj.tzinfo)
    return ext(w.EXT_DATETIME, pack(parts))


def _dec_datetime(unpack: Unpack, data: bytes) -> datetime:
    parts = _list(unpack(data), "datetime", 7, 9)
    year, month, day, hour, minute, second, micro = (_int(p, "datetime") for p in parts[:7])
    tz = _tz(parts[7]) if len(parts) > 7 else None
    fold = _int(parts[8], "datetime fold") if len(parts) > 8 else 0
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz, fold=fold)


def _enc_date(pack: Pack, obj: date) -> ExtType:
    return ext(w.EXT_DATE, _ORDINAL.pack(obj.toordinal()))


def _dec_date(unpack: Unpack, data: bytes) -> date:
    if len(data) != _ORDINAL.size:
        raise CorruptDataError("stored date is malformed")
    return date.fromordinal(_ORDINAL.unpack(data)[0])


def _enc_time(pack: Pack, obj: time) -> ExtType:
    parts: list[Any] = [obj.hour, obj.minute, obj.second, obj.microsecond]
    if obj.fold:
        parts += [obj.tzinfo, obj.fold]
    elif obj.tzinfo is not None:
        parts.append(obj.tzinfo)
    return ext(w.EXT_TIME, pack(parts))


def _dec_time(unpack: Unpack, data: bytes) -> time:
    parts = _list(unpack(data), "time", 4, 6)
    hour, minute, second, micro = (_int(p, "time") for p in parts[:4])
    tz = _tz(parts[4]) if len(parts) > 4 else None
    fold = _int(parts[5], "time fold") if len(parts) > 5 else 0
    return time(hour, minute, second, micro, tzinfo=tz, fold=fold)


def _enc_timedelta(pack: Pack, obj: timedelta) -> ExtType:
    return ext(w.EXT_TIMEDELTA, pack([obj.days, obj.seconds, obj.microseconds]))


def _dec_timedelta(unpack: Unpack, data: bytes) -> timedelta:
    days, seconds, micros = (_int(p, "timedelta") for p in _list(unpack(data), "timedelta", 3, 3))
    return timedelta(days=days, seconds=seconds, microseconds=micros)


def _enc_timezone(pack: Pack, obj: timezone) -> ExtType:
    args = obj.__getinitargs__()  # type: ignore[attr-defined]
    parts: list[Any] = [args[0] // _ONE_US, *args[1:]]
    return ext(w.EXT_TIMEZONE, pack(parts))


def _dec_timezone(unpack: Unpack, data: bytes) -> timezone:
    parts = _list(unpack(data), "timezone", 1, 2)
    offset = timedelta(microseconds=_int(parts[0], "timezone offset"))
    if len(parts) == 1:
        return timezone(offset)
    if type(parts[1]) is not str:
        raise CorruptDataError("stored timezone name is not a string")
    return timezone(offset, parts[1])


def _enc_zoneinfo(pack: Pack, obj: ZoneInfo) -> ExtType:
    if obj.key is None:
        raise SerializationError(
            f"{obj!r} was loaded from a file and has no IANA key, so it cannot be stored"
        )
    return ext(w.EXT_ZONEINFO, obj.key.encode("utf-8"))


def _dec_zoneinfo(unpack: Unpack, data: bytes) -> ZoneInfo:
    return ZoneInfo(data.decode("utf-8"))


# -- paths, patterns, addresses ------------------------------------------------------

_PATH_KINDS: dict[type, int] = {
    pathlib.PosixPath: w.PATH_CONCRETE,
    pathlib.WindowsPath: w.PATH_CONCRETE,
    pathlib.PurePosixPath: w.PATH_PURE_POSIX,
    pathlib.PureWindowsPath: w.PATH_PURE_WINDOWS,
}
_PATH_CLASSES: dict[int, type[pathlib.PurePath]] = {
    w.PATH_CONCRETE: pathlib.Path,
    w.PATH_PURE_POSIX: pathlib.PurePosixPath,
    w.PATH_PURE_WINDOWS: pathlib.PureWindowsPath,
}


def _enc_path(pack: Pack, obj: pathlib.PurePath) -> ExtType:
    return ext(w.EXT_PATH, pack([_PATH_KINDS[type(obj)], str(obj)]))


def _dec_path(unpack: Unpack, data: bytes) -> pathlib.PurePath:
    kind, text = _list(unpack(data), "path", 2, 2)
    cls = _PATH_CLASSES.get(kind)
    if cls is None or type(text) is not str:
        raise CorruptDataError("stored path is malformed")
    return cls(text)


def _enc_pattern(pack: Pack, obj: re.Pattern[Any]) -> ExtType:
    return ext(w.EXT_PATTERN, pack([obj.pattern, obj.flags]))


def _dec_pattern(unpack: Unpack, data: bytes) -> re.Pattern[Any]:
    pattern, flags = _list(unpack(data), "regex", 2, 2)
    if type(pattern) not in (str, bytes):
        raise CorruptDataError("stored regex pattern is not text")
    return re.compile(pattern, _int(flags, "regex flags"))


def _enc_ip(pack: Pack, obj: Any) -> ExtType:
    return ext(w.EXT_IPADDRESS, pack([_IP_CLASSES.index(type(obj)), str(obj)]))


def _dec_ip(unpack: Unpack, data: bytes) -> Any:
    kind, text = _list(unpack(data), "IP address", 2, 2)
    if type(kind) is not int or not 0 <= kind < len(_IP_CLASSES) or type(text) is not str:
        raise CorruptDataError("stored IP address is malformed")
    return _IP_CLASSES[kind](text)


STDLIB_ENCODERS: dict[type, Encoder] = {
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_frozenset,
    deque: _enc_deque,
    int: _enc_int,
    Decimal: _enc_decimal,
    UUID: _enc_uuid,
    datetime: _enc_datetime,
    date: _enc_date,
    time: _enc_time,
    timedelta: _enc_timedelta,
    timezone: _enc_timezone,
    ZoneInfo: _enc_zoneinfo,
    re.Pattern: _enc_pattern,
    **dict.fromkeys(_PATH_KINDS, _enc_path),
    **dict.fromkeys(_IP_CLASSES, _enc_ip),
}

STDLIB_DECODERS: dict[int, Decoder] = {
    w.EXT_TUPLE: _dec_tuple,
    w.EXT_SET: _dec_set,
    w.EXT_FROZENSET: _dec_frozenset,
    w.EXT_DEQUE: _dec_deque,
    w.EXT_BIGINT: _dec_int,
    w.EXT_BYTEARRAY: _dec_bytearray,
    w.EXT_DECIMAL: _dec_decimal,
    w.EXT_UUID: _dec_uuid,
    w.EXT_DATETIME: _dec_datetime,
    w.EXT_DATE: _dec_date,
    w.EXT_TIME: _dec_time,
    w.EXT_TIMEDELTA: _dec_timedelta,
    w.EXT_TIMEZONE: _dec_timezone,
    w.EXT_ZONEINFO: _dec_zoneinfo,
    w.EXT_PATH: _dec_path,
    w.EXT_PATTERN: _dec_pattern,
    w.EXT_IPADDRESS: _dec_ip,
}
