"""Corrupt stored rows raise typed errors that name the problem, and harm nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers._rows import BlobKind
from checkpointkit.errors import CheckpointKitError, CorruptDataError
from tests.contract.helpers import checkpoint, config


def fill(saver: MemoryCheckpointer, thread: str, steps: int = 4) -> list[str]:
    versions: dict[str, Any] = {}
    parent: str | None = None
    ids = []
    items: list[str] = []
    for i in range(steps):
        items = [*items, f"item {i}"]
        versions["items"] = saver.get_next_version(versions.get("items"), None)
        versions["n"] = saver.get_next_version(versions.get("n"), None)
        cp = checkpoint({"items": items, "n": i}, dict(versions))
        stored = saver.put(config(thread, checkpoint_id=parent), cp, {"step": i}, dict(versions))
        parent = stored["configurable"]["checkpoint_id"]
        ids.append(parent)
    saver._core.forget()
    return ids


def test_corrupt_skeleton_is_a_typed_error() -> None:
    saver = MemoryCheckpointer()
    ids = fill(saver, "t")
    saver._threads["t"].checkpoints[""][ids[-1]].skeleton = b"\xc1garbage"
    with pytest.raises(CorruptDataError, match="skeleton"):
        saver.get_tuple(config("t"))
    # the other checkpoints still read back
    tup = saver.get_tuple(config("t", checkpoint_id=ids[-2]))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["n"] == 2


def test_corrupt_value_blob_is_a_typed_error() -> None:
    saver = MemoryCheckpointer()
    fill(saver, "t")
    blobs = saver._threads["t"].blobs[""]
    value_blob = next(b for b in blobs.values() if b.channel == "n")
    value_blob.payload = b"\xff\xff\xff"
    with pytest.raises(CheckpointKitError):
        list(saver.list(config("t")))


def test_missing_delta_base_names_channel_and_version() -> None:
    saver = MemoryCheckpointer()
    fill(saver, "t")
    blobs = saver._threads["t"].blobs[""]
    root = next(k for k, b in blobs.items() if b.kind is BlobKind.LIST)
    del blobs[root]
    with pytest.raises(CorruptDataError, match=r"'items'.*missing"):
        saver.get_tuple(config("t"))


def test_corrupt_piece_table_is_a_typed_error() -> None:
    saver = MemoryCheckpointer()
    fill(saver, "t")
    blobs = saver._threads["t"].blobs[""]
    delta = max(
        (b for b in blobs.values() if b.kind is BlobKind.LIST_DELTA), key=lambda b: b.version
    )
    delta.length += 5
    with pytest.raises(CorruptDataError, match="rebuilt to"):
        saver.get_tuple(config("t"))


def test_undecodable_value_names_where_it_is_stored() -> None:
    saver = MemoryCheckpointer()
    fill(saver, "t")
    blobs = saver._threads["t"].blobs[""]
    value_blob = next(b for b in blobs.values() if b.channel == "n")
    value_blob.payload = b"\xff\xff\xff"
    with pytest.raises(CheckpointKitError, match=r"thread 't'.*channel 'n'"):
        list(saver.list(config("t")))


def test_with_allowlist_clone_decodes_with_its_own_serializer() -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    # a strict (allowlisting) JsonPlusSerializer makes a new serializer per allowlist
    saver = MemoryCheckpointer(serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    fill(saver, "t")
    clone = saver.with_allowlist([("tests", "Nothing")])
    assert clone is not saver
    assert clone._core.serde is clone.serde
    tup = clone.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["items"] == [f"item {i}" for i in range(4)]
