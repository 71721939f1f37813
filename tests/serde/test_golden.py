"""Committed blobs written by earlier versions (and by LangGraph) still load equal.

The blobs live in ``golden/blobs.json``; ``python -m tests.serde.regen_golden``
adds blobs for new cases and never rewrites existing ones. A change to the
wire format that breaks old data fails here.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from checkpointkit.serde import MsgpackSerializer, loads_in
from tests.serde.regen_golden import load_golden
from tests.serde.serde_cases import (
    GOLDEN_CASES,
    GOLDEN_CONTEXT,
    GOLDEN_VARIANTS,
    assert_same,
    golden_cases_for,
    golden_serializers,
)

GOLDEN = load_golden()["blobs"]
SERIALIZERS: dict[str, Any] = {**golden_serializers(), "jsonplus": MsgpackSerializer()}
EXPECTED_TAGS = {
    "ckmsgpack": {"ckmsgpack"},
    "zstd": {"ckmsgpack", "ckmsgpack+zstd"},
    "aesgcm": {"ckmsgpack+aesgcm"},
    "zstd+aesgcm": {"ckmsgpack+aesgcm", "ckmsgpack+zstd+aesgcm"},
    "jsonplus": {"msgpack", "null", "bytes", "bytearray"},
}
ALL = [(variant, name) for variant in GOLDEN_VARIANTS for name in golden_cases_for(variant)]


def test_every_case_has_a_golden_blob() -> None:
    missing = [f"{v}/{n}" for v, n in ALL if n not in GOLDEN.get(v, {})]
    assert not missing, (
        f"no golden blob for {missing}; run: .venv/bin/python -m tests.serde.regen_golden"
    )


@pytest.mark.parametrize(("variant", "name"), ALL, ids=[f"{v}/{n}" for v, n in ALL])
def test_golden_blob_loads_equal(variant: str, name: str) -> None:
    if name not in GOLDEN.get(variant, {}):
        pytest.fail(f"missing golden blob {variant}/{name}: run python -m tests.serde.regen_golden")
    tag, encoded = GOLDEN[variant][name]
    assert tag in EXPECTED_TAGS[variant]
    loaded = loads_in(SERIALIZERS[variant], (tag, base64.b64decode(encoded)), GOLDEN_CONTEXT)
    # LangGraph's format does not keep pydantic's set of explicitly set fields.
    assert_same(loaded, GOLDEN_CASES[name](), fields_set=variant != "jsonplus")


def test_compressed_goldens_include_compressed_blobs() -> None:
    tags = {tag for tag, _ in GOLDEN["zstd"].values()} | {
        tag for tag, _ in GOLDEN["zstd+aesgcm"].values()
    }
    assert {"ckmsgpack+zstd", "ckmsgpack+zstd+aesgcm"} <= tags
