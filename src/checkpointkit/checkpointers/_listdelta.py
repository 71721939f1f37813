"""List deltas: store a list-valued channel as a chain of small edits.

LangGraph's ``add_messages`` (and any append-style reducer) produces, at each
step, a new list that repeats every item of the previous one. Storing each
version whole makes a thread's storage grow with the square of its length.
Here a new version is stored against an earlier stored version of the same
channel (its *base*) as a piece table: runs of base items kept by position,
and the items that are new. An append is the special case "all of the base,
then the new items", stored with no piece table at all.

Versions form *chains*: a chain starts at a full snapshot (``seq`` 0) and each
delta has ``seq = base.seq + 1``. Rebuilding a version reads the rows of its
chain up to its ``seq`` (one query on a database), follows base pointers from
the target back to the root and applies the pieces forward. A new snapshot is
started when a chain would cost more to rebuild than the value is worth
(see `needs_snapshot`), so reading any version reads data proportional to its
own size, and storage stays linear in the amount of new data.

Which items are "the same" is decided by object identity: LangGraph hands the
same Python objects from one step to the next, so an unchanged item costs a
pointer comparison. An object that a node edited in place and returned again
keeps its identity, so the caller passes the ids of every object written since
the base (`touched`, from ``put_writes``) and those are stored anew. Callers
that edit stored objects in place without writing them may ask for shallow
fingerprints (`fingerprints`) of every item, compared on each put — exact for
attribute reassignment, at the price of a pass over the whole list.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ListState",
    "apply_pieces",
    "diff_lists",
    "fingerprints",
    "is_unique_version",
    "item_ids",
    "needs_snapshot",
]

# Versions made by `get_next_version` ("<32 digits>.<random>") are unique per
# write, so a row stored under one is never overwritten with other content and
# can safely serve as the base of later deltas. Caller-chosen versions (plain
# ints in tests, say) may be reused for different values: never a base.
_UNIQUE_VERSION = re.compile(r"^\d{32}\.\d")

# A chain is cut (a fresh snapshot written) when rebuilding its tip would read
# more than this many times the items the value holds, when it holds more
# than this many non-append edits, or when it grows longer than MAX_CHAIN_SEQ.
MAX_COST_FACTOR = 2
COST_SLACK = 16
MAX_EDIT_HOPS = 16
MAX_CHAIN_SEQ = 4096

_NEW = -1  # piece marker: the next `count` items come from the delta payload


def is_unique_version(version: str) -> bool:
    """Tell whether `version` was made unique per write (safe as a delta base)."""
    return _UNIQUE_VERSION.match(version) is not None


def _fingerprint(item: Any) -> Any:
    """Identities of an item's direct contents, to notice in-place edits."""
    if isinstance(item, dict):
        return (len(item), *map(id, item.values()))
    attrs = getattr(item, "__dict__", None)
    if attrs is not None:
        return (len(attrs), *map(id, attrs.values()))
    if isinstance(item, list):
        return (len(item), *map(id, item))
    return None


def fingerprints(items: Sequence[Any]) -> list[Any]:
    """Return the fingerprint of every item of `items`."""
    return [_fingerprint(item) for item in items]


@dataclass(slots=True)
class ListState:
    """What this process knows about one stored version of a list channel."""

    version: str
    chain: str
    seq: int
    cost: int  # items + pieces stored along the chain from its root to here
    edits: int  # non-append deltas along the chain from its root to here
    items: list[Any]
    marks: list[Any] | None  # item fingerprints, when the caller verifies items
    # The ids of `items`, made once needed: then the next append's check
    # against `touched` costs the size of `touched`, not of the list.
    ids: frozenset[int] | None = None


def item_ids(state: ListState) -> frozenset[int]:
    """Return the ids of a state's items (its `items` are never edited after it is made)."""
    ids = state.ids
    if ids is None:
        ids = state.ids = frozenset(map(id, state.items))
    return ids


def diff_lists(
    base: ListState,
    new: list[Any],
    touched: AbstractSet[int] = frozenset(),
    new_marks: list[Any] | None = None,
) -> tuple[list[int] | None, list[Any]] | None:
    """Express `new` as pieces of `base.items` plus new items.

    Args:
        base: The stored version to diff against.
        new: The list to store.
        touched: Ids of objects written since `base`: never matched by identity.
        new_marks: Fingerprints of `new`, compared with `base.marks` when given.

    Returns:
        ``(None, appended)`` for a pure append, ``(pieces, new_items)`` for a
        general edit, or ``None`` when the two lists share nothing (a snapshot
        is cheaper). ``pieces`` is a flat list of ``start, count`` pairs: a
        ``start >= 0`` keeps ``count`` base items from that position, a start
        of -1 takes the next ``count`` items of ``new_items``.
    """
    old = base.items
    old_marks = base.marks if new_marks is not None else None
    n_old = len(old)
    if (
        len(new) >= n_old
        and all(map(operator.is_, new[:n_old], old))
        # new[:n_old] are the very objects of `old`, so their ids are old's.
        and (not touched or touched.isdisjoint(item_ids(base)))
        and (old_marks is None or new_marks is None or new_marks[:n_old] == old_marks)
    ):
        return None, new[n_old:]

    position = {id(item): i for i, item in enumerate(old)}
    pieces: list[int] = []
    new_items: list[Any] = []
    run_start = run_len = 0
    new_run = 0
    kept = 0
    for k, item in enumerate(new):
        i = position.get(id(item))
        if (
            i is not None
            and old[i] is item
            and id(item) not in touched
            and (old_marks is None or new_marks is None or old_marks[i] == new_marks[k])
        ):
            if new_run:
                pieces += (_NEW, new_run)
                new_run = 0
            if run_len and i == run_start + run_len:
                run_len += 1
            else:
                if run_len:
                    pieces += (run_start, run_len)
                run_start, run_len = i, 1
            kept += 1
        else:
            if run_len:
                pieces += (run_start, run_len)
                run_len = 0
            new_items.append(item)
            new_run += 1
    if run_len:
        pieces += (run_start, run_len)
    if new_run:
        pieces += (_NEW, new_run)
    if kept == 0:
        return None
    return pieces, new_items


def apply_pieces(base: list[Any], pieces: list[int] | None, new_items: list[Any]) -> list[Any]:
    """Rebuild a version from its base list, piece table and new items.

    Raises:
        ValueError: the pieces do not fit the base or the new items.
    """
    if pieces is None:
        return [*base, *new_items]
    out: list[Any] = []
    taken = 0
    n_base = len(base)
    for k in range(0, len(pieces) - 1, 2):
        start, count = pieces[k], pieces[k + 1]
        if count < 0:
            raise ValueError(f"negative piece length {count}")
        if start == _NEW:
            if taken + count > len(new_items):
                raise ValueError("piece table asks for more new items than stored")
            out += new_items[taken : taken + count]
            taken += count
        elif start >= 0 and start + count <= n_base:
            out += base[start : start + count]
        else:
            raise ValueError(f"piece {start}+{count} outside a base of {n_base} items")
    if len(pieces) % 2 or taken != len(new_items):
        raise ValueError("piece table does not match the stored new items")
    return out


def needs_snapshot(base: ListState, pieces: list[int] | None, n_new: int, length: int) -> bool:
    """Tell whether a delta on `base` would make its chain too costly to rebuild."""
    cost = base.cost + n_new + (len(pieces) if pieces else 0)
    edits = base.edits + (pieces is not None)
    return (
        cost > MAX_COST_FACTOR * length + COST_SLACK
        or edits > MAX_EDIT_HOPS
        or base.seq + 1 > MAX_CHAIN_SEQ
    )
