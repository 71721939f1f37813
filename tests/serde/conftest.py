"""Fixtures of the serde tests: every serializer combination, a fixed test key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from checkpointkit.serde import CompressedSerializer, EncryptedSerializer, MsgpackSerializer

TEST_KEYS = {"k1": bytes(range(32)), "k0": bytes(range(32, 64))}


def make_serializer(combo: str, **msgpack_options: Any) -> Any:
    """Build the serializer stack named `combo` (plain/compressed/encrypted/both)."""
    inner: Any = MsgpackSerializer(**msgpack_options)
    if combo in ("compressed", "both"):
        # threshold=0: every value that shrinks is compressed, so the tests
        # exercise the compressed path, not just the pass-through.
        inner = CompressedSerializer(inner, threshold=0)
    if combo in ("encrypted", "both"):
        inner = EncryptedSerializer(inner, keys=TEST_KEYS)
    return inner


COMBOS = ["plain", "compressed", "encrypted", "both"]


@pytest.fixture(params=COMBOS)
def combo(request: pytest.FixtureRequest) -> str:
    """Name of a serializer combination."""
    return str(request.param)


@pytest.fixture
def serde(combo: str) -> Any:
    """A serializer stack for each combination."""
    return make_serializer(combo)


@pytest.fixture
def serializer_factory() -> Callable[..., Any]:
    """`make_serializer`, for tests that need options."""
    return make_serializer
