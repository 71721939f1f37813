"""Every supported type round-trips, with its type, through every serializer stack."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
from typing import Any

import pydantic
import pytest
from langchain_core.messages import HumanMessage

from checkpointkit.errors import ConfigurationError, SerializationError, UnknownTypeError
from checkpointkit.serde import (
    MsgpackSerializer,
    SerializerProtocol,
    default_serializer,
    dumps_in,
    loads_in,
    place,
    register_type,
)
from tests.serde.serde_cases import GOLDEN_CASES, Point, assert_same


@pytest.mark.parametrize("case", list(GOLDEN_CASES))
def test_case_round_trips_through_every_stack(serde: Any, case: str) -> None:
    value = GOLDEN_CASES[case]()
    assert_same(serde.loads_typed(serde.dumps_typed(value)), value)


@pytest.mark.parametrize("case", ["graph_state", "conversation", "user_pydantic_v2"])
def test_contextual_round_trip(serde: Any, case: str) -> None:
    value = GOLDEN_CASES[case]()
    context = place("thread", "ns", "checkpoint-1", "messages")
    assert_same(loads_in(serde, dumps_in(serde, value, context), context), value)


def test_tags() -> None:
    tag, _ = MsgpackSerializer().dumps_typed({"a": 1})
    assert tag == "ckmsgpack"


def test_default_serializer_is_msgpack() -> None:
    serde = default_serializer()
    assert isinstance(serde, MsgpackSerializer)
    assert isinstance(serde, SerializerProtocol)


def test_top_level_bytes_and_bytearray_keep_their_type() -> None:
    serde = MsgpackSerializer()
    assert_same(serde.loads_typed(serde.dumps_typed(b"raw")), b"raw")
    assert_same(serde.loads_typed(serde.dumps_typed(bytearray(b"raw"))), bytearray(b"raw"))


def test_nested_bytearray_comes_back_as_bytes() -> None:
    # Documented limit: msgpack packs bytearray natively.
    serde = MsgpackSerializer()
    assert serde.loads_typed(serde.dumps_typed([bytearray(b"x")])) == [b"x"]


def test_lone_surrogates_round_trip() -> None:
    serde = MsgpackSerializer()
    value = {"\udcff": ["\ud83d", "ok"]}
    assert_same(serde.loads_typed(serde.dumps_typed(value)), value)


def test_message_keeps_fields_set_extra_and_is_equal() -> None:
    serde = MsgpackSerializer()
    message = HumanMessage(content="hi", id="1", custom="x")
    back = serde.loads_typed(serde.dumps_typed(message))
    assert back == message
    assert back.model_fields_set == message.model_fields_set
    assert back.custom == "x"  # type: ignore[attr-defined]
    assert back.model_dump(exclude_unset=True) == message.model_dump(exclude_unset=True)


def test_exceptions_are_stored_as_their_repr_like_langgraph() -> None:
    serde = MsgpackSerializer()
    assert serde.loads_typed(serde.dumps_typed(ValueError("boom"))) == "ValueError('boom')"


# -- allowlist and registration ----------------------------------------------------


@dataclasses.dataclass
class Unregistered:
    a: int


class Plain:
    pass


def test_unregistered_class_is_refused_when_writing() -> None:
    with pytest.raises(UnknownTypeError, match=r"Unregistered.*allow=\[Unregistered\]"):
        MsgpackSerializer().dumps_typed({"x": Unregistered(1)})


def test_allow_argument_is_per_instance() -> None:
    allowed = MsgpackSerializer(allow=[Unregistered])
    blob = allowed.dumps_typed(Unregistered(1))
    assert allowed.loads_typed(blob) == Unregistered(1)
    with pytest.raises(UnknownTypeError, match="test_roundtrip:Unregistered"):
        MsgpackSerializer().loads_typed(blob)


def test_instance_register_decorator() -> None:
    serde = MsgpackSerializer()

    @serde.register
    @dataclasses.dataclass
    class Local:
        v: Any

    assert serde.is_allowed(Local)
    assert serde.loads_typed(serde.dumps_typed(Local((1,)))) == Local((1,))
    assert not MsgpackSerializer().is_allowed(Local)


def test_is_allowed() -> None:
    serde = MsgpackSerializer()
    assert serde.is_allowed(int)
    assert serde.is_allowed(tuple)
    assert serde.is_allowed(HumanMessage)
    assert serde.is_allowed(Point)  # registered globally in serde_cases
    assert not serde.is_allowed(Unregistered)
    assert not serde.is_allowed(collections.OrderedDict)


def test_registration_needs_a_supported_kind_or_functions() -> None:
    with pytest.raises(ConfigurationError, match="to_state"):
        MsgpackSerializer(allow=[Plain])
    with pytest.raises(ConfigurationError, match="both to_state and from_state"):
        register_type(Plain, to_state=lambda p: None)
    with pytest.raises(ConfigurationError, match="only classes"):
        MsgpackSerializer(allow=[Plain()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="non-empty string"):
        MsgpackSerializer().register(Unregistered, name="")
    with pytest.raises(ConfigurationError, match="list of classes"):
        MsgpackSerializer(allow=Unregistered)  # type: ignore[arg-type]


def test_aliases_read_a_moved_class() -> None:
    old = MsgpackSerializer()
    old.register(Unregistered, name="old.module:Thing")
    blob = old.dumps_typed(Unregistered(3))
    new = MsgpackSerializer()
    new.register(Unregistered, aliases=["old.module:Thing"])
    assert new.loads_typed(blob) == Unregistered(3)
    assert b"old.module:Thing" not in new.dumps_typed(Unregistered(3))[1]


def test_subclass_of_allowed_type_is_not_allowed_implicitly() -> None:
    class MyMessage(HumanMessage):
        pass

    with pytest.raises(UnknownTypeError, match="MyMessage"):
        MsgpackSerializer().dumps_typed(MyMessage(content="x"))


def test_unsupported_values_raise_typed_errors() -> None:
    serde = MsgpackSerializer()
    with pytest.raises(UnknownTypeError, match="lock"):
        serde.dumps_typed(threading.Lock())
    with pytest.raises(UnknownTypeError, match="OrderedDict"):
        serde.dumps_typed(collections.OrderedDict(a=1))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError):
        serde.dumps_typed(cycle)


def test_deep_but_reasonable_nesting_is_fine_and_too_deep_is_refused() -> None:
    serde = MsgpackSerializer(max_depth=16)
    value: Any = 0
    for _ in range(15):
        value = (value,)
    assert serde.loads_typed(serde.dumps_typed(value)) == value
    with pytest.raises(SerializationError, match="max_depth=16"):
        serde.dumps_typed((value,))


def test_constructor_validation() -> None:
    for bad in (0, 10_000, "8", 2.0):
        with pytest.raises(ConfigurationError, match="max_depth"):
            MsgpackSerializer(max_depth=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unsafe_allow_pickle"):
        MsgpackSerializer(unsafe_allow_pickle="yes")  # type: ignore[arg-type]


class Evolving(pydantic.BaseModel):
    name: str


@dataclasses.dataclass
class EvolvingData:
    name: str


def test_schema_evolution_fills_defaults_and_drops_removed_fields() -> None:
    writer = MsgpackSerializer()
    writer.register(Evolving, name="evolving")
    writer.register(EvolvingData, name="evolving-data")
    model_blob = writer.dumps_typed(Evolving(name="a"))
    data_blob = writer.dumps_typed(EvolvingData(name="a"))

    class EvolvingV2(pydantic.BaseModel):
        title: str = "untitled"
        tags: list[str] = pydantic.Field(default_factory=list)

    @dataclasses.dataclass
    class EvolvingDataV2:
        title: str = "untitled"
        created: dt.date = dt.date(2000, 1, 1)

    reader = MsgpackSerializer()
    reader.register(EvolvingV2, name="evolving")
    reader.register(EvolvingDataV2, name="evolving-data")
    assert reader.loads_typed(model_blob) == EvolvingV2()
    assert reader.loads_typed(data_blob) == EvolvingDataV2()


def test_unsafe_pickle_is_opt_in() -> None:
    unsafe = MsgpackSerializer(unsafe_allow_pickle=True)
    blob = unsafe.dumps_typed({"lock_free": collections.OrderedDict(a=1)})
    assert unsafe.loads_typed(blob) == {"lock_free": collections.OrderedDict(a=1)}
    with pytest.raises(UnknownTypeError, match="unsafe_allow_pickle=True"):
        MsgpackSerializer().loads_typed(blob)


def test_thread_safety_of_reused_packers() -> None:
    serde = MsgpackSerializer()
    value = GOLDEN_CASES["graph_state"]()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                assert_same(serde.loads_typed(serde.dumps_typed(value)), value)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_reentrant_dumps_from_to_state() -> None:
    serde = MsgpackSerializer()

    class Wrapper:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Wrapper) and other.inner == self.inner

    serde.register(
        Wrapper,
        name="wrapper",
        to_state=lambda w: serde.dumps_typed(w.inner)[1],
        from_state=lambda b: Wrapper(serde.loads_typed(("ckmsgpack", b))),
    )
    value = [Wrapper((1, Wrapper({2}))), (3,)]
    assert serde.loads_typed(serde.dumps_typed(value)) == value
