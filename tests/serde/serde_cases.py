"""Shared material of the serde tests: test types, a strict comparison, golden cases.

The user-defined test types are registered with explicit wire names, so the
committed golden blobs do not depend on how pytest names this module.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import ipaddress
import math
import pathlib
import re
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pydantic
import pydantic.v1
from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.store.base import GetOp, Item
from langgraph.types import (
    Command,
    Interrupt,
    Overwrite,
    PregelTask,
    Send,
    StateSnapshot,
    TimeoutPolicy,
)

from checkpointkit.serde import place, register_type

# -- test types (registered globally, with stable names) ---------------------------


@register_type(name="ck-tests:Color")
class Color(enum.Enum):
    RED = 1
    GREEN = 2


@register_type(name="ck-tests:Mood")
class Mood(str, enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@register_type(name="ck-tests:Point")
@dataclasses.dataclass
class Point:
    x: Any
    y: Any = 0
    tags: list[Any] = dataclasses.field(default_factory=list)


@register_type(name="ck-tests:Frozen")
@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    value: Any
    label: str = "frozen"


@register_type(name="ck-tests:Pair")
class Pair(NamedTuple):
    left: Any
    right: Any = None


@register_type(name="ck-tests:Inner")
class Inner(pydantic.BaseModel):
    n: int = 0
    note: str | None = None


@register_type(name="ck-tests:Model")
class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    name: str
    inner: Inner | None = None
    payload: Any = None
    _secret: int = pydantic.PrivateAttr(default=0)


@register_type(name="ck-tests:LegacyModel")
class LegacyModel(pydantic.v1.BaseModel):
    name: str
    numbers: list[int] = []


class Opaque:
    """A class of no supported kind, registered with explicit functions."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


register_type(
    Opaque,
    name="ck-tests:Opaque",
    to_state=lambda obj: obj.token,
    from_state=Opaque,
)


@register_type
class Settings(TypedDict):
    retries: int
    mode: str


USER_TYPES: list[type] = [Color, Mood, Point, Frozen, Pair, Inner, Model, LegacyModel, Opaque]

# -- strict comparison ---------------------------------------------------------------


def assert_same(
    actual: Any, expected: Any, path: str = "value", *, fields_set: bool = True
) -> None:
    """Assert `actual` equals `expected` with the same types, recursively.

    Args:
        actual: The value read back.
        expected: The original value.
        path: Where we are, for messages.
        fields_set: Also compare pydantic's set of explicitly-set fields (which
            LangGraph's format does not keep).
    """
    kw = {"fields_set": fields_set}
    assert type(actual) is type(expected), (
        f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    )
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), path
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{path}: keys differ"
        for key, value in expected.items():
            (actual_key,) = [k for k in actual if k == key]
            assert_same(actual_key, key, f"{path} key {key!r}", **kw)
            assert_same(actual[key], value, f"{path}[{key!r}]", **kw)
    elif isinstance(expected, (list, tuple, deque)) and not hasattr(expected, "_fields"):
        assert len(actual) == len(expected), f"{path}: lengths differ"
        if isinstance(expected, deque):
            assert actual.maxlen == expected.maxlen, f"{path}: maxlen differs"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]", **kw)
    elif hasattr(expected, "_fields"):  # NamedTuple
        for name in expected._fields:
            assert_same(getattr(actual, name), getattr(expected, name), f"{path}.{name}", **kw)
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected, path
        for member in expected:
            (actual_member,) = [m for m in actual if m == member]
            assert_same(actual_member, member, f"{path} member {member!r}", **kw)
    elif isinstance(expected, pydantic.BaseModel):
        assert_same(actual.__dict__, expected.__dict__, f"{path}.__dict__", **kw)
        if fields_set:
            assert actual.model_fields_set == expected.model_fields_set, f"{path}: fields_set"
        assert_same(actual.__pydantic_extra__, expected.__pydantic_extra__, f"{path}.extra", **kw)
        assert_same(actual.__pydantic_private__, expected.__pydantic_private__, f"{path}.pvt", **kw)
    elif isinstance(expected, pydantic.v1.BaseModel):
        assert_same(actual.__dict__, expected.__dict__, f"{path}.__dict__", **kw)
        if fields_set:
            assert actual.__fields_set__ == expected.__fields_set__, f"{path}: fields_set"
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            assert_same(
                getattr(actual, field.name),
                getattr(expected, field.name),
                f"{path}.{field.name}",
                **kw,
            )
    elif isinstance(expected, (dt.datetime, dt.time)):
        assert actual == expected, path
        assert actual.fold == expected.fold, f"{path}: fold"
        assert_same(actual.tzinfo, expected.tzinfo, f"{path}.tzinfo", **kw)
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, path
        assert actual.shape == expected.shape, path
        if expected.dtype.kind == "O":
            for i, (a, e) in enumerate(zip(actual.ravel(), expected.ravel(), strict=True)):
                assert_same(a, e, f"{path}.flat[{i}]", **kw)
        else:
            # Bitwise: NaN, NaT and -0.0 must come back exactly too.
            assert actual.tobytes() == expected.tobytes(), path
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
        assert actual.attrs == expected.attrs, path
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(actual, expected, check_exact=True)
    elif isinstance(expected, pd.Index):
        pd.testing.assert_index_equal(actual, expected, exact=True, check_exact=True)
        assert getattr(actual, "freq", None) == getattr(expected, "freq", None), path
    elif isinstance(expected, (Send, Item)):
        for slot in type(expected).__slots__:
            assert_same(getattr(actual, slot), getattr(expected, slot), f"{path}.{slot}", **kw)
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


# -- golden cases ------------------------------------------------------------------

GOLDEN_KEY_ID = "golden-1"
GOLDEN_KEY = base64.b64encode(bytes(range(32))).decode()
GOLDEN_CONTEXT = place("golden-thread", "", "golden-checkpoint", "messages")
_WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)


def conversation(n: int = 20) -> list[Any]:
    """A small conversation with tool calls, deterministic."""
    out: list[Any] = []
    for i in range(n // 4):
        out.append(HumanMessage(content=f"question {i} " * 10, id=f"h{i}"))
        out.append(
            AIMessage(
                content="",
                id=f"a{i}",
                tool_calls=[{"name": "search", "args": {"q": f"q{i}", "k": i}, "id": f"c{i}"}],
            )
        )
        out.append(ToolMessage(content=f"result {i} " * 20, tool_call_id=f"c{i}", id=f"t{i}"))
        out.append(AIMessage(content=f"answer {i} " * 30, id=f"b{i}"))
    return out


def _model() -> Model:
    model = Model(name="m", inner=Inner(n=2), payload={"k": (1, 2)}, extra_field=[1])
    model._secret = 42
    return model


def _frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ints": [1, 2, 3],
            "floats": [1.5, np.nan, -0.0],
            "strs": ["a", None, "c"],
            "objs": [{"k": 1}, [1, 2], (3,)],
            "when": pd.to_datetime(["2020-01-01", "2021-06-01", "2022-12-31"]),
            "cat": pd.Categorical(["x", "y", "x"], ordered=True),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "flags": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    frame["when_tz"] = frame["when"].dt.tz_localize("Europe/Paris")
    frame.attrs["source"] = "golden"
    return frame


GOLDEN_CASES: dict[str, Callable[[], Any]] = {
    # scalars and containers
    "none": lambda: None,
    "bool": lambda: True,
    "int": lambda: -(2**63),
    "bigint": lambda: 2**200 + 1,
    "negative_bigint": lambda: -(2**64),
    "float": lambda: -1.25e-300,
    "float_nan": lambda: float("nan"),
    "str": lambda: "héllo wörld ✓",
    "str_lone_surrogate": lambda: "a\ud800b",
    "bytes": lambda: b"\x00\x01\xff",
    "bytearray": lambda: bytearray(b"mutable"),
    "list": lambda: [1, "two", 3.0, None, [True]],
    "dict": lambda: {"a": 1, "b": {"c": [1, 2]}},
    "dict_typed_keys": lambda: {
        1: "int",
        (1, "a"): "tuple",
        uuid.UUID(int=7): "uuid",
        Color.RED: "enum",
        frozenset({1}): "frozenset",
        b"k": "bytes",
        None: "none",
    },
    "tuple": lambda: (1, (2, (3,)), [4]),
    "set": lambda: {1, "a", (2, 3)},
    "frozenset": lambda: frozenset({"x", frozenset({1})}),
    "deque": lambda: deque([1, 2, 3], maxlen=5),
    # dates and times
    "datetime_naive": lambda: dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    "datetime_utc": lambda: _WHEN,
    "datetime_zoneinfo_fold": lambda: dt.datetime(
        2021, 11, 7, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1
    ),
    "datetime_named_offset": lambda: dt.datetime(
        2020, 2, 29, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30), "NST")
    ),
    "date": lambda: dt.date(1, 1, 1),
    "time": lambda: dt.time(23, 59, 59, 999999),
    "time_tz": lambda: dt.time(12, 0, tzinfo=dt.timezone.utc),
    "timedelta": lambda: dt.timedelta(days=-3, seconds=5, microseconds=7),
    "timezone_utc": lambda: dt.timezone.utc,
    "timezone_named": lambda: dt.timezone(dt.timedelta(hours=5, minutes=45), "NPT"),
    "zoneinfo": lambda: ZoneInfo("Europe/Paris"),
    # other stdlib
    "uuid": lambda: uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": lambda: decimal.Decimal("-12345.678900"),
    "decimal_special": lambda: [decimal.Decimal("Infinity"), decimal.Decimal("-0")],
    "path": lambda: pathlib.Path("/var/data/run.json"),
    "pure_posix_path": lambda: pathlib.PurePosixPath("relative/dir"),
    "pure_windows_path": lambda: pathlib.PureWindowsPath("C:\\Users\\me"),
    "regex": lambda: re.compile(r"^a+\d{2,}$", re.IGNORECASE | re.MULTILINE),
    "regex_bytes": lambda: re.compile(rb"\x00+"),
    "ipv4_address": lambda: ipaddress.IPv4Address("192.168.1.10"),
    "ipv4_network": lambda: ipaddress.IPv4Network("10.0.0.0/8"),
    "ipv6_interface": lambda: ipaddress.IPv6Interface("2001:db8::1/64"),
    # LangChain
    "human_message": lambda: HumanMessage(content="hi", id="h1", name="bob"),
    "human_message_extra": lambda: HumanMessage(content="x", custom_field={"a": 1}),
    "human_message_blocks": lambda: HumanMessage(
        content=[{"type": "text", "text": "look"}, {"type": "image_url", "image_url": "u"}]
    ),
    "ai_message_tool_calls": lambda: AIMessage(
        content="",
        id="a1",
        tool_calls=[{"name": "f", "args": {"x": [1, 2]}, "id": "c1"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        response_metadata={"model": "m"},
    ),
    "ai_message_chunk": lambda: AIMessageChunk(
        content="par", tool_call_chunks=[{"name": "f", "args": '{"a"', "id": "c", "index": 0}]
    ),
    "tool_message": lambda: ToolMessage(
        content="42", tool_call_id="c1", artifact={"raw": [1]}, status="error"
    ),
    "system_message": lambda: SystemMessage(content="be brief"),
    "chat_message": lambda: ChatMessage(content="c", role="critic"),
    "function_message": lambda: FunctionMessage(content="f", name="fn"),
    "remove_message": lambda: RemoveMessage(id="h1"),
    "document": lambda: Document(page_content="text", metadata={"page": 1}, id="d1"),
    "conversation": conversation,
    # LangGraph
    "send": lambda: Send("node", {"topic": "cats"}),
    "send_timeout": lambda: Send("node", 1, timeout=5.0),
    "interrupt": lambda: Interrupt(value={"question": "ok?"}, id="i-1"),
    "command": lambda: Command(update={"a": 1}, resume={"i-1": "yes"}, goto=[Send("n", 2)]),
    "overwrite": lambda: Overwrite([1, 2]),
    "timeout_policy": lambda: TimeoutPolicy(run_timeout=5.0, idle_timeout=1.5),
    "delta_snapshot": lambda: _DeltaSnapshot([HumanMessage(content="d", id="d1")]),
    "item": lambda: Item(
        value={"a": 1}, key="k", namespace=("x", "y"), created_at=_WHEN, updated_at=_WHEN
    ),
    "get_op": lambda: GetOp(("a", "b"), "k", False),
    "pregel_task": lambda: PregelTask("t1", "node", ("__pregel_pull", "node"), result={"a": 1}),
    "state_snapshot": lambda: StateSnapshot(
        {"a": 1}, ("n",), {"configurable": {"thread_id": "1"}}, {"step": 1}, "2024", None, (), ()
    ),
    # user types
    "user_enum": lambda: Color.GREEN,
    "user_str_enum": lambda: Mood.SAD,
    "user_dataclass": lambda: Point(1, (2, 3), ["t"]),
    "user_frozen_slots_dataclass": lambda: Frozen(value={1, 2}),
    "user_namedtuple": lambda: Pair(1, Pair("nested")),
    "user_pydantic_v2": _model,
    "user_pydantic_v1": lambda: LegacyModel(name="legacy", numbers=[1, 2]),
    "user_custom": lambda: Opaque("tok"),
    "user_typeddict": lambda: Settings(retries=3, mode="fast"),
    # numpy and pandas
    "numpy_int": lambda: np.arange(12, dtype="<i4").reshape(3, 4),
    "numpy_float_fortran": lambda: np.asfortranarray(np.linspace(0, 1, 6).reshape(2, 3)),
    "numpy_big_endian": lambda: np.array([1, 2], dtype=">u2"),
    "numpy_object": lambda: np.array([{"a": 1}, (1, 2), None], dtype=object),
    "numpy_datetime": lambda: np.array(["2020-01-01", "NaT"], dtype="M8[D]"),
    "numpy_str": lambda: np.array(["ab", "ç"]),
    "numpy_scalars": lambda: [np.float64(1.5), np.int8(-3), np.bool_(True), np.str_("s")],
    "pandas_frame": _frame,
    "pandas_series": lambda: pd.Series([1.0, 2.5], index=["a", "b"], name="s"),
    "pandas_multiindex": lambda: pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["n", "l"]),
    "pandas_datetime_index": lambda: pd.date_range("2024-01-01", periods=4, freq="D"),
    # a typical graph state
    "graph_state": lambda: {
        "messages": conversation(8),
        "plan": [Point(1), Point(2)],
        "updated": _WHEN,
        "seen": {"a", "b"},
        "budget": decimal.Decimal("9.99"),
        "mode": Mood.HAPPY,
    },
}

#: Cases also stored compressed, encrypted, and both (large enough to compress).
WRAPPED_CASES = ["conversation", "graph_state", "pandas_frame", "dict", "none", "user_pydantic_v2"]

#: Cases whose LangGraph JsonPlusSerializer blobs are committed: builtin types
#: JsonPlus round-trips faithfully itself (checked when generating).
JSONPLUS_CASES = [
    "none",
    "bool",
    "int",
    "float",
    "str",
    "bytes",
    "bytearray",
    "list",
    "dict",
    "set",
    "frozenset",
    "datetime_naive",
    "datetime_utc",
    "datetime_named_offset",
    "date",
    "time",
    "time_tz",
    "timedelta",
    "timezone_utc",
    "timezone_named",
    "zoneinfo",
    "uuid",
    "decimal",
    "path",
    "regex",
    "ipv4_address",
    "ipv4_network",
    "ipv6_interface",
    "human_message",
    "ai_message_tool_calls",
    "tool_message",
    "system_message",
    "chat_message",
    "function_message",
    "remove_message",
    "document",
    "conversation",
    "send",
    "send_timeout",
    "interrupt",
    "command",
    "overwrite",
    "timeout_policy",
    "delta_snapshot",
    "item",
    "numpy_int",
]


def golden_serializers() -> dict[str, Any]:
    """The serializer writing (and reading back) each golden variant, by name."""
    from checkpointkit.serde import (
        CompressedSerializer,
        EncryptedSerializer,
        MsgpackSerializer,
    )

    keys = {GOLDEN_KEY_ID: GOLDEN_KEY}
    return {
        "ckmsgpack": MsgpackSerializer(),
        "zstd": CompressedSerializer(MsgpackSerializer(), threshold=64),
        "aesgcm": EncryptedSerializer(MsgpackSerializer(), keys=keys),
        "zstd+aesgcm": EncryptedSerializer(
            CompressedSerializer(MsgpackSerializer(), threshold=64), keys=keys
        ),
    }


def golden_cases_for(variant: str) -> list[str]:
    """Names of the cases stored for `variant`."""
    if variant == "ckmsgpack":
        return list(GOLDEN_CASES)
    if variant == "jsonplus":
        return list(JSONPLUS_CASES)
    return list(WRAPPED_CASES)


GOLDEN_VARIANTS = ["ckmsgpack", "zstd", "aesgcm", "zstd+aesgcm", "jsonplus"]
