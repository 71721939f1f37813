"""Property tests: nested structures of every supported type round-trip, with their types.

Each stack (plain, compressed, encrypted, both) gets the same strategy; example
counts are kept moderate so the module runs in seconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import pathlib
import re
from collections import deque
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.types import Command, Interrupt, Send

from checkpointkit.serde import dumps_in, loads_in, place
from tests.serde.conftest import COMBOS, make_serializer
from tests.serde.serde_cases import (
    Color,
    Frozen,
    LegacyModel,
    Model,
    Mood,
    Opaque,
    Pair,
    Point,
    assert_same,
)

SERIALIZERS = {combo: make_serializer(combo) for combo in COMBOS}
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

text = st.text(max_size=20)
ids = st.none() | st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)

# -- leaves ------------------------------------------------------------------------

hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: big ints included
    st.floats(allow_nan=False),
    text,
    st.binary(max_size=20),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.dates(),
    st.times(timezones=st.none() | st.timezones()),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.timedeltas(),
    st.sampled_from(Color),
    st.sampled_from(Mood),
    st.builds(pathlib.PurePosixPath, text),
    st.builds(pathlib.PureWindowsPath, text),
    st.builds(pathlib.Path, text),
    st.ip_addresses(),
    st.builds(ipaddress.ip_network, st.sampled_from(["10.0.0.0/8", "::1/128", "192.168.0.0/24"])),
    st.sampled_from([re.compile(r"a+b?", re.I), re.compile(rb"\d+"), re.compile("x", re.M)]),
    st.builds(Opaque, text),
    st.builds(
        dt.timezone,
        st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23)),
    ),
)

numpy_arrays = hnp.arrays(
    dtype=st.sampled_from(["<i8", ">i4", "<f8", "<f4", "|b1", "<U3", "<M8[s]", "<c16"]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)


def _message(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(HumanMessage, content=text, id=ids),
        st.builds(
            AIMessage,
            content=text,
            id=ids,
            tool_calls=st.lists(
                st.fixed_dictionaries(
                    {"name": text, "args": st.dictionaries(text, st.integers()), "id": text}
                ),
                max_size=2,
            ),
        ),
        st.builds(ToolMessage, content=text, tool_call_id=text, artifact=children),
        st.builds(
            Document, page_content=text, metadata=st.dictionaries(text, children, max_size=2)
        ),
    )


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hashable = st.recursive(
        hashable_leaves,
        lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
        max_leaves=4,
    )
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(hashable, children, max_size=4),
        st.sets(hashable, max_size=4),
        st.frozensets(hashable, max_size=3),
        st.builds(deque, st.lists(children, max_size=3), st.none() | st.integers(3, 5)),
        st.builds(Point, children, children, st.lists(children, max_size=2)),
        st.builds(Frozen, children),
        st.builds(Pair, children, children),
        st.builds(Model, name=text, payload=children),
        st.builds(LegacyModel, name=text, numbers=st.lists(st.integers(-5, 5), max_size=3)),
        st.builds(Send, text, children),
        st.builds(Interrupt, value=children, id=text),
        st.builds(Command, update=children, resume=children),
        _message(children),
    )


values = st.recursive(hashable_leaves | numpy_arrays, _extend, max_leaves=25)


@PROPERTY_SETTINGS
@given(st.sampled_from(COMBOS), values)
def test_nested_values_round_trip(combo: str, value: Any) -> None:
    serde = SERIALIZERS[combo]
    assert_same(serde.loads_typed(serde.dumps_typed(value)), value)


@PROPERTY_SETTINGS
@given(st.sampled_from(COMBOS), values, st.lists(text, min_size=1, max_size=4))
def test_contextual_round_trip(combo: str, value: Any, where: list[str]) -> None:
    serde = SERIALIZERS[combo]
    context = place(*where)
    assert_same(loads_in(serde, dumps_in(serde, value, context), context), value)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 5))
    columns: dict[str, Any] = {}
    kinds = draw(
        st.lists(st.sampled_from(["int", "float", "str", "obj", "cat", "Int64", "dt"]), max_size=4)
    )
    for i, kind in enumerate(kinds):
        name = f"c{i}"
        if kind == "int":
            columns[name] = draw(
                st.lists(st.integers(-(2**40), 2**40), min_size=rows, max_size=rows)
            )
        elif kind == "float":
            columns[name] = draw(st.lists(st.floats(), min_size=rows, max_size=rows))
        elif kind == "str":
            columns[name] = pd.array(
                draw(st.lists(st.none() | text, min_size=rows, max_size=rows)), dtype="str"
            )
        elif kind == "obj":
            columns[name] = pd.array(
                draw(st.lists(st.none() | st.integers() | text, min_size=rows, max_size=rows)),
                dtype=object,
            )
        elif kind == "cat":
            columns[name] = pd.Categorical(
                draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=rows, max_size=rows))
            )
        elif kind == "Int64":
            columns[name] = pd.array(
                draw(st.lists(st.none() | st.integers(-100, 100), min_size=rows, max_size=rows)),
                dtype="Int64",
            )
        else:
            columns[name] = pd.to_datetime(
                draw(st.lists(st.integers(0, 2**31), min_size=rows, max_size=rows)), unit="s"
            )
    index = draw(st.sampled_from(["range", "str", "int"]))
    frame = pd.DataFrame(columns, index=pd.RangeIndex(rows))
    if index == "str":
        frame.index = pd.Index([f"r{i}" for i in range(rows)], name="row")
    elif index == "int":
        frame.index = pd.Index(draw(st.lists(st.integers(), min_size=rows, max_size=rows)))
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COMBOS), frames())
def test_pandas_frames_round_trip(combo: str, frame: pd.DataFrame) -> None:
    serde = SERIALIZERS[combo]
    back = serde.loads_typed(serde.dumps_typed({"frame": frame, "col": frame.iloc[:, :1]}))
    assert_same(back["frame"], frame)
    assert_same(back["col"], frame.iloc[:, :1])


def test_numpy_arrays_are_writable_copies() -> None:
    serde = SERIALIZERS["plain"]
    back = serde.loads_typed(serde.dumps_typed(np.arange(3)))
    back[0] = 7  # not a read-only view of the blob
    assert back.tolist() == [7, 1, 2]
