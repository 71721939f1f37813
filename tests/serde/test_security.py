"""Crafted blobs: refused with typed errors, without imports, calls, crashes or hangs."""

from __future__ import annotations

import importlib
import json
import pickle
import sys
import types
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkpointkit.errors import CheckpointKitError, CorruptDataError, UnknownTypeError
from checkpointkit.serde import MsgpackSerializer
from checkpointkit.serde import _wire as w
from tests.serde.serde_cases import GOLDEN_CASES

SENTINEL_MODULE = "ck_sentinel_module"
DANGEROUS = [
    ("os", "system"),
    ("subprocess", "Popen"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("importlib", "import_module"),
    ("antigravity", "fly"),  # importing it would open a web browser
    (SENTINEL_MODULE, "boom"),
    (SENTINEL_MODULE, "Boom"),
]


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def ext(code: int, payload: Any) -> msgpack.ExtType:
    return msgpack.ExtType(code, payload if isinstance(payload, bytes) else pack(payload))


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record calls of the sentinel and of `importlib.import_module`; check sys.modules."""
    calls: list[Any] = []
    module = types.ModuleType(SENTINEL_MODULE)

    def boom(*args: Any, **kwargs: Any) -> None:
        calls.append(("boom", args, kwargs))

    class Boom:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(("Boom", args, kwargs))

        def __reduce__(self) -> Any:
            return (boom, ("from pickle",))

    boom.__module__ = Boom.__module__ = SENTINEL_MODULE
    boom.__qualname__ = "boom"
    module.boom = boom  # type: ignore[attr-defined]
    module.Boom = Boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, SENTINEL_MODULE, module)
    real_import = importlib.import_module

    def recording_import(name: str, package: str | None = None) -> Any:
        calls.append(("import", name))
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", recording_import)
    before = set(sys.modules)
    yield calls
    assert set(sys.modules) - before == set(), "decoding imported a module"
    assert "antigravity" not in sys.modules


def _lg_blobs(module: str, name: str) -> list[tuple[str, bytes]]:
    return [
        ("msgpack", pack(ext(w.LG_EXT_CONSTRUCTOR_SINGLE_ARG, [module, name, "echo pwned"]))),
        ("msgpack", pack(ext(w.LG_EXT_CONSTRUCTOR_POS_ARGS, [module, name, ["echo pwned"]]))),
        ("msgpack", pack(ext(w.LG_EXT_CONSTRUCTOR_KW_ARGS, [module, name, {"args": "x"}]))),
        ("msgpack", pack(ext(w.LG_EXT_METHOD_SINGLE_ARG, [module, name, "x", "fromisoformat"]))),
        ("msgpack", pack(ext(w.LG_EXT_PYDANTIC_V1, [module, name, {"a": 1}]))),
        ("msgpack", pack(ext(w.LG_EXT_PYDANTIC_V2, [module, name, {"a": 1}, "model_validate"]))),
        (
            "json",
            json.dumps(
                {"lc": 2, "type": "constructor", "id": [*module.split("."), name], "args": ["x"]}
            ).encode(),
        ),
        (
            "json",
            json.dumps(
                {"lc": 1, "type": "constructor", "id": [*module.split("."), name], "kwargs": {}}
            ).encode(),
        ),
    ]


def _crafted(module: str, name: str) -> list[tuple[str, bytes]]:
    ours = [
        ("ckmsgpack", pack(ext(w.EXT_OBJECT, [f"{module}:{name}", "echo pwned"]))),
        ("ckmsgpack", pack({"nested": [ext(w.EXT_OBJECT, [f"{module}:{name}", {}])]})),
    ]
    return ours + _lg_blobs(module, name)


@pytest.mark.parametrize(("module", "name"), DANGEROUS)
def test_non_allowlisted_names_are_refused_without_side_effects(
    watch: list[Any], module: str, name: str
) -> None:
    serde = MsgpackSerializer()
    for blob in _crafted(module, name):
        with pytest.raises(UnknownTypeError) as info:
            serde.loads_typed(blob)
        assert name in str(info.value)
        assert "allow" in str(info.value)
    assert watch == []


def test_method_calls_other_than_known_ones_are_refused(watch: list[Any]) -> None:
    blob = pack(ext(w.LG_EXT_METHOD_SINGLE_ARG, ["datetime", "datetime", "x", "now"]))
    with pytest.raises(UnknownTypeError, match="now"):
        MsgpackSerializer().loads_typed(("msgpack", blob))
    assert watch == []


def test_pickle_is_refused_by_default(watch: list[Any]) -> None:
    payload = pickle.dumps(sys.modules[SENTINEL_MODULE].Boom())
    watch.clear()  # building the payload instantiated Boom once
    serde = MsgpackSerializer()
    with pytest.raises(UnknownTypeError, match="unsafe_allow_pickle"):
        serde.loads_typed(("pickle", payload))
    with pytest.raises(UnknownTypeError, match="unsafe_allow_pickle"):
        serde.loads_typed(("ckmsgpack", pack([ext(w.EXT_PICKLE, payload)])))
    assert watch == []
    # Proof that the payload was live: the explicit unsafe option runs it.
    MsgpackSerializer(unsafe_allow_pickle=True).loads_typed(("pickle", payload))
    assert ("boom", ("from pickle",), {}) in watch


# -- malformed input ---------------------------------------------------------------

HUGE_HEADERS = [
    b"\xdd\xff\xff\xff\xff",  # array32 of 4 G items
    b"\xdf\xff\xff\xff\xff",  # map32 of 4 G pairs
    b"\xc6\xff\xff\xff\xff",  # bin32 of 4 GB
    b"\xdb\xff\xff\xff\xff",  # str32 of 4 GB
    b"\xc9\xff\xff\xff\xff\x21",  # ext32 of 4 GB
    b"\xc1",  # reserved byte
    b"",
    b"\x93\x01",  # truncated array
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("data", HUGE_HEADERS)
def test_huge_declared_sizes_and_garbage_are_refused(data: bytes) -> None:
    serde = MsgpackSerializer()
    for tag, blob in [
        ("ckmsgpack", data),
        ("ckmsgpack", pack(ext(w.EXT_TUPLE, data))),
        ("ckmsgpack", pack(ext(w.EXT_OBJECT, data))),
        ("msgpack", data),
        ("msgpack", pack(ext(w.LG_EXT_CONSTRUCTOR_KW_ARGS, data))),
    ]:
        with pytest.raises(CorruptDataError):
            serde.loads_typed((tag, blob))


@pytest.mark.timeout(10)
def test_huge_declared_numpy_shapes_allocate_nothing() -> None:
    serde = MsgpackSerializer()
    with pytest.raises(CorruptDataError, match="shape"):
        serde.loads_typed(("ckmsgpack", pack(ext(w.EXT_NDARRAY, ["<f8", [2**40, 2**40], b""]))))
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("ckmsgpack", pack(ext(w.EXT_NDARRAY, ["|O", [2**40], []]))))
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("ckmsgpack", pack(ext(w.EXT_NDARRAY, ["|O", [1], b"\x00" * 8]))))
    lg = pack(ext(w.LG_EXT_NUMPY_ARRAY, ["<f8", [2**40], "C", b""]))
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("msgpack", lg))


def _nested_ext(code: int, depth: int, lg: bool = False) -> bytes:
    blob = pack(None)
    for _ in range(depth):
        body = pack(["builtins", "set", msgpack.ExtType(0, b"")]) if lg else b"\x91" + blob
        blob = pack(msgpack.ExtType(code, body if not lg else blob))
    return blob


@pytest.mark.timeout(10)
def test_deep_nesting_is_refused_quickly() -> None:
    serde = MsgpackSerializer()
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("ckmsgpack", b"\x91" * 200_000 + b"\xc0"))
    with pytest.raises(CorruptDataError, match="max_depth"):
        serde.loads_typed(("ckmsgpack", _nested_ext(w.EXT_TUPLE, 20_000)))
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("msgpack", _nested_ext(w.LG_EXT_DELTA_SNAPSHOT, 20_000, lg=True)))
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("json", b"[" * 200_000))


@pytest.mark.parametrize(
    "payload",
    [
        ext(99, b""),  # unknown ext code
        ext(w.EXT_OBJECT, "not a list"),
        ext(w.EXT_OBJECT, [9999, {}]),  # unknown builtin id
        ext(w.EXT_OBJECT, [1.5, {}]),
        ext(w.EXT_OBJECT, [1, "fields"]),  # HumanMessage with bad state
        ext(w.EXT_OBJECT, [1, {"content": "x"}, 5, None, None]),
        ext(w.EXT_OBJECT, [1, {"content": "x"}]),
        ext(w.EXT_UUID, b"short"),
        ext(w.EXT_DATE, b"\xff\xff\xff\xff"),
        ext(w.EXT_DATETIME, [2024, 13, 1, 0, 0, 0, 0]),
        ext(w.EXT_DATETIME, [2024, 1, 1, 0, 0, 0, 0, "not a tz"]),
        ext(w.EXT_DECIMAL, b"not a number"),
        ext(w.EXT_ZONEINFO, b"../../etc/passwd"),
        ext(w.EXT_PATTERN, ["(unclosed", 0]),
        ext(w.EXT_SET, [[1, 2]]),  # unhashable member
        ext(w.EXT_DEQUE, [[1], -5]),
        ext(w.EXT_PANDAS, [0, "x", [], "y", None]),
        ext(w.EXT_NPSCALAR, ["<f8", b"\x00"]),
        ext(w.EXT_NDARRAY, ["(2,)<f8", [1], b"\x00" * 16]),  # sub-array dtype
        ext(w.EXT_NDARRAY, ["<f8,<i4", [1], b"\x00" * 12]),  # structured dtype
        ext(w.EXT_NDARRAY, ["|V2147483647", [1], b""]),
    ],
)
def test_malformed_payloads_raise_corrupt_data(payload: Any) -> None:
    with pytest.raises(CorruptDataError):
        MsgpackSerializer().loads_typed(("ckmsgpack", pack([payload])))


def test_msgpack_timestamps_decode_to_datetimes_or_fail_typed() -> None:
    serde = MsgpackSerializer()
    # We never write msgpack's own timestamp ext; a crafted one yields an
    # allowed type (an aware datetime) or a typed error.
    stamp = serde.loads_typed(("ckmsgpack", b"\xd6\xff\x00\x00\x00\x01"))
    assert stamp.isoformat() == "1970-01-01T00:00:01+00:00"
    with pytest.raises(CorruptDataError):
        serde.loads_typed(("ckmsgpack", b"\xc7\x0c\xff" + b"\xff" * 12))


def test_every_truncation_of_a_valid_blob_is_a_typed_error() -> None:
    serde = MsgpackSerializer()
    tag, blob = serde.dumps_typed(GOLDEN_CASES["graph_state"]())
    for end in range(len(blob)):
        with pytest.raises(CorruptDataError):
            serde.loads_typed((tag, blob[:end]))
    with pytest.raises(CorruptDataError):
        serde.loads_typed((tag, blob + b"\x00"))


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.sampled_from(["ckmsgpack", "msgpack", "json"]), st.binary(max_size=200))
def test_random_bytes_never_escape_as_untyped_errors(tag: str, data: bytes) -> None:
    try:
        MsgpackSerializer().loads_typed((tag, data))
    except CheckpointKitError:
        pass


_VALID = [
    MsgpackSerializer().dumps_typed(GOLDEN_CASES[name]())
    for name in ("graph_state", "pandas_frame", "numpy_object", "user_pydantic_v2", "command")
]


@_FUZZ
@given(st.sampled_from(_VALID), st.data())
def test_mutated_blobs_never_escape_as_untyped_errors(blob: tuple[str, bytes], data: Any) -> None:
    tag, raw = blob
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(mutated) - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    try:
        MsgpackSerializer().loads_typed((tag, bytes(mutated)))
    except CheckpointKitError:
        pass
