"""CompressedSerializer: threshold, tags, context forwarding, decompression bombs."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import zstandard

from checkpointkit.errors import ConfigurationError, CorruptDataError, MissingDependencyError
from checkpointkit.serde import (
    CompressedSerializer,
    EncryptedSerializer,
    MsgpackSerializer,
    dumps_in,
    is_contextual,
    loads_in,
    place,
)
from tests.serde.conftest import TEST_KEYS
from tests.serde.serde_cases import conversation


def test_small_values_keep_the_inner_tag_and_bytes() -> None:
    inner = MsgpackSerializer()
    serde = CompressedSerializer(inner, threshold=1024)
    assert serde.dumps_typed({"a": 1}) == inner.dumps_typed({"a": 1})
    assert serde.loads_typed(inner.dumps_typed({"a": 1})) == {"a": 1}


def test_large_values_are_compressed_and_tagged() -> None:
    serde = CompressedSerializer(threshold=1024)
    value = conversation(40)
    tag, data = serde.dumps_typed(value)
    assert tag == "ckmsgpack+zstd"
    assert len(data) < len(MsgpackSerializer().dumps_typed(value)[1]) / 2
    assert serde.loads_typed((tag, data)) == value


def test_incompressible_values_are_stored_plain() -> None:
    import os

    serde = CompressedSerializer(threshold=16)
    noise = os.urandom(4096)
    assert serde.dumps_typed(noise)[0] == "ckmsgpack"


def test_wraps_any_serializer_and_composes() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = CompressedSerializer(JsonPlusSerializer(), threshold=10)
    tag, data = serde.dumps_typed(["x" * 100])
    assert tag == "msgpack+zstd"
    assert serde.loads_typed((tag, data)) == ["x" * 100]
    twice = CompressedSerializer(CompressedSerializer(threshold=0), threshold=0)
    assert twice.loads_typed(twice.dumps_typed("y" * 500)) == "y" * 500


def test_forwards_context_to_a_contextual_inner_serializer() -> None:
    serde = CompressedSerializer(EncryptedSerializer(keys=TEST_KEYS), threshold=0)
    assert is_contextual(serde)
    here, there = place("t", "", "c1", "ch"), place("t", "", "c2", "ch")
    blob = dumps_in(serde, "v" * 100, here)
    assert blob[0].endswith("+aesgcm")
    assert loads_in(serde, blob, here) == "v" * 100
    from checkpointkit.errors import DecryptionError

    with pytest.raises(DecryptionError):
        loads_in(serde, blob, there)


def test_is_contextual_only_over_a_contextual_inner_serializer() -> None:
    plain = CompressedSerializer(MsgpackSerializer())
    assert not is_contextual(plain)
    assert not hasattr(plain, "dumps_typed_in")
    # The module-level helpers still work on it (they fall back to dumps_typed).
    assert loads_in(plain, dumps_in(plain, "x" * 100, b"here"), b"elsewhere") == "x" * 100


def _frame(data: bytes, **options: Any) -> bytes:
    return zstandard.ZstdCompressor(**options).compress(data)  # type: ignore[no-any-return]


@pytest.mark.timeout(20)
def test_declared_bomb_is_refused_before_allocating() -> None:
    serde = CompressedSerializer(max_decompressed_size=1024 * 1024)
    # A frame that declares 64 MiB of content.
    bomb = _frame(b"\x00" * (64 * 1024 * 1024))
    assert zstandard.frame_content_size(bomb) == 64 * 1024 * 1024
    with pytest.raises(CorruptDataError, match="max_decompressed_size"):
        serde.loads_typed(("ckmsgpack+zstd", bomb))


@pytest.mark.timeout(20)
def test_undeclared_bomb_is_abandoned_at_the_cap() -> None:
    serde = CompressedSerializer(max_decompressed_size=1024 * 1024)
    bomb = _frame(b"\x00" * (64 * 1024 * 1024), write_content_size=False)
    assert zstandard.frame_content_size(bomb) == -1
    with pytest.raises(CorruptDataError, match="max_decompressed_size"):
        serde.loads_typed(("ckmsgpack+zstd", bomb))


def test_undeclared_size_within_the_cap_is_fine() -> None:
    inner_tag, inner = MsgpackSerializer().dumps_typed(["z" * 5000])
    frame = _frame(inner, write_content_size=False)
    assert CompressedSerializer().loads_typed((inner_tag + "+zstd", frame)) == ["z" * 5000]


def test_frame_lying_about_its_size_fails() -> None:
    frame = bytearray(_frame(b"a" * 1000))
    # Single-segment frame with a 2-byte content size (value - 256): declare 256 bytes.
    assert frame[4] & 0xC0 == 0x40
    frame[5:7] = (0).to_bytes(2, "little")
    assert zstandard.frame_content_size(bytes(frame)) == 256
    with pytest.raises(CorruptDataError):
        CompressedSerializer().loads_typed(("ckmsgpack+zstd", bytes(frame)))


@pytest.mark.parametrize("payload", [b"", b"not zstd at all", b"\x28\xb5\x2f\xfd"])
def test_malformed_frames_raise_corrupt_data(payload: bytes) -> None:
    with pytest.raises(CorruptDataError):
        CompressedSerializer().loads_typed(("ckmsgpack+zstd", payload))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": -1}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"level": 0}, "level"),
        ({"level": 23}, "level"),
        ({"max_decompressed_size": 0}, "max_decompressed_size"),
        ({"max_decompressed_size": True}, "max_decompressed_size"),
    ],
)
def test_constructor_validates_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CompressedSerializer(**kwargs)


def test_inner_must_be_a_serializer() -> None:
    with pytest.raises(ConfigurationError, match="dumps_typed"):
        CompressedSerializer(object())  # type: ignore[arg-type]


def test_missing_zstandard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(MissingDependencyError, match=r"checkpointkit\[zstd\]"):
        CompressedSerializer()
