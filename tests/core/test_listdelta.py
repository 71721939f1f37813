"""The list-delta engine and the storage core's list handling, directly."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers._listdelta import (
    MAX_EDIT_HOPS,
    ListState,
    apply_pieces,
    diff_lists,
    needs_snapshot,
)
from checkpointkit.checkpointers._rows import BlobKind
from tests.contract.helpers import checkpoint, config


def state(items: list[Any]) -> ListState:
    return ListState("v", "v", 0, len(items), 0, list(items), None)


class Item:
    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=30),
    st.lists(st.one_of(st.integers(0, 40), st.just(-1)), max_size=40),
)
def test_diff_then_apply_rebuilds_any_edit(old_ids: list[int], new_ids: list[int]) -> None:
    pool = {i: Item(i) for i in range(41)}
    old = [pool[i] for i in old_ids]
    new = [Item(-1) if i == -1 else pool[i] for i in new_ids]
    diff = diff_lists(state(old), new)
    if diff is None:
        assert old
        assert not any(any(x is y for y in old) for x in new)
        return
    pieces, new_items = diff
    assert apply_pieces(old, pieces, new_items) == new
    assert all(a is b for a, b in zip(apply_pieces(old, pieces, new_items), new, strict=True))


def test_append_is_a_pure_append_and_touched_items_are_restored() -> None:
    old = [Item(i) for i in range(5)]
    assert diff_lists(state(old), [*old, Item(9)]) == (None, [Item(9)])
    pieces, new_items = diff_lists(state(old), [*old, Item(9)], touched={id(old[2])})  # type: ignore[misc]
    assert pieces is not None
    assert new_items == [old[2], Item(9)]


def test_corrupt_piece_tables_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        apply_pieces([1, 2], [0, 5], [])
    with pytest.raises(ValueError, match="new items"):
        apply_pieces([1, 2], [-1, 2], [3])
    with pytest.raises(ValueError, match="does not match"):
        apply_pieces([1, 2], [0, 2], [3])


def test_edit_hops_force_a_snapshot() -> None:
    base = ListState("v", "v", 3, 10, MAX_EDIT_HOPS, list(range(10)), None)
    assert needs_snapshot(base, [0, 1], 0, 10)
    assert not needs_snapshot(state(list(range(10))), None, 1, 11)


def put_list(
    saver: MemoryCheckpointer, thread: str, versions: dict[str, Any], items: list[Any]
) -> str:
    versions["items"] = saver.get_next_version(versions.get("items"), None)
    cp = checkpoint({"items": items}, dict(versions))
    saver.put(config(thread), cp, {"step": 0}, {"items": versions["items"]})
    return str(versions["items"])


def kinds(saver: MemoryCheckpointer, thread: str) -> list[BlobKind]:
    rows = saver._threads[thread].blobs[""].values()
    return [b.kind for b in sorted(rows, key=lambda b: b.version)]


def test_storage_of_appends_is_linear_and_chains_are_cut() -> None:
    saver = MemoryCheckpointer()
    versions: dict[str, Any] = {}
    items: list[Any] = []
    sizes = []
    for i in range(300):
        items = [*items, f"item {i} " + "x" * 100]
        put_list(saver, "t", versions, items)
        sizes.append(saver.storage_bytes("t"))
    first, last = sizes[99] - sizes[0], sizes[299] - sizes[200]
    assert last < 1.3 * first, (first, last)
    assert kinds(saver, "t").count(BlobKind.LIST) == 1
    # trimming to a window: chains are cut before they cost twice the value
    for i in range(100):
        items = [*items[-10:], f"new {i}"]
        put_list(saver, "t", versions, items)
    assert kinds(saver, "t").count(BlobKind.LIST) > 2


def test_in_place_edits_are_caught_with_verify_items() -> None:
    saver = MemoryCheckpointer(verify_items=True)
    versions: dict[str, Any] = {}
    items = [{"text": "a"}, {"text": "b"}]
    put_list(saver, "t", versions, items)
    items[0]["text"] = "edited"  # same object, new content, no write
    put_list(saver, "t", versions, list(items))
    saver._core.forget()
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["items"] == [{"text": "edited"}, {"text": "b"}]


def test_an_appended_item_edited_in_place_and_written_is_stored_anew() -> None:
    # Appends after writes carry their base's item ids forward (plus the new
    # items'): an item that entered by an append, then was edited in place and
    # written, must be stored again, not referenced by identity.
    saver = MemoryCheckpointer()
    versions: dict[str, Any] = {"items": saver.get_next_version(None, None)}
    items: list[Any] = [{"text": "first"}]
    head = saver.put(config("t"), checkpoint({"items": items}, dict(versions)), {}, versions)
    for i in range(3):
        saver.put_writes(head, [("other", {"w": i})], f"task-{i}")  # touched: not in the list
        items = [*items, {"text": f"item {i}"}]
        versions["items"] = saver.get_next_version(versions["items"], None)
        cp = checkpoint({"items": items}, dict(versions))
        head = saver.put(head, cp, {}, {"items": versions["items"]})
    cached = saver._core._cached(("t", "", "items"))
    assert cached is not None
    assert cached.ids is not None  # carried from the base, not rebuilt
    items[-1]["text"] = "edited"
    saver.put_writes(head, [("items", [items[-1]])], "editor")
    versions["items"] = saver.get_next_version(versions["items"], None)
    cp = checkpoint({"items": [*items, {"text": "last"}]}, dict(versions))
    saver.put(head, cp, {}, {"items": versions["items"]})
    newest = max(saver._threads["t"].blobs[""].values(), key=lambda b: b.version)
    assert newest.kind is BlobKind.LIST_DELTA
    assert newest.ops is not None  # not a pure append
    saver._core.forget()
    tup = saver.get_tuple(config("t"))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["items"][-2:] == [{"text": "edited"}, {"text": "last"}]


def test_every_version_of_a_random_edit_history_reads_back() -> None:
    rng = random.Random(7)
    saver = MemoryCheckpointer()
    versions: dict[str, Any] = {}
    items: list[Any] = []
    expected: dict[str, list[Any]] = {}
    for step in range(150):
        op = rng.random()
        if op < 0.6 or not items:
            items = [*items, {"n": step}]
        elif op < 0.75:
            del items[rng.randrange(len(items))]
            items = list(items)
        elif op < 0.9:
            items = list(items)
            items[rng.randrange(len(items))] = {"n": -step}
        else:
            items = items[::-1]
        version = put_list(saver, "t", versions, items)
        expected[version] = copy.deepcopy(items)
    saver._core.forget()
    for tup in saver.list(config("t")):
        version = str(tup.checkpoint["channel_versions"]["items"])
        assert tup.checkpoint["channel_values"]["items"] == expected[version]


def test_prune_keep_last_keeps_the_newest_and_their_values() -> None:
    saver = MemoryCheckpointer()
    versions: dict[str, Any] = {}
    items: list[Any] = []
    for i in range(10):
        items = [*items, f"item {i}"]
        put_list(saver, "t", versions, items)
    rows = saver._threads["t"].checkpoints[""]
    keep = saver._core.keep_for_prune(
        list(rows.values()), saver._threads["t"].blobs[""], "keep_latest", keep_last=3
    )
    assert keep == set(sorted(rows)[-3:])


def test_a_version_a_reader_relied_on_stays_cached_after_another_put() -> None:
    # A reader skips fetching a chain because its version is cached; a put of
    # the same channel from another OS thread must not make it vanish.
    saver = MemoryCheckpointer()
    versions: dict[str, Any] = {}
    items: list[Any] = []
    stored = []
    for i in range(4):
        items = [*items, f"item {i}"]
        stored.append(put_list(saver, "t", versions, items))
    core = saver._core
    rows = saver._threads["t"].blobs[""]
    for version in stored:
        blob = rows[("items", version)]
        state = core.cached_list("t", "", blob)
        assert state is not None
        assert len(state.items) == blob.length
