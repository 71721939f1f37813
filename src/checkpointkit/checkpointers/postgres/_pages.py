"""What a reader holds of the list channels, and the decoding of ``list`` pages (no I/O).

Rebuilding a list version needs the rows of its delta chain, which for a
long conversation are as many as its messages. A reader often holds the
version already: the storage core's cache has the list this process last
stored or read (`RecentLists` tells the server which), and a ``list`` that
walks history newest first has just rebuilt, on the page before, a later
version of the same chain that the page's versions are prefixes of
(`ListMemo.seed_prefixes`). So a ``list`` page names those *held* versions,
and the server leaves out the chain rows they cover (`_queries._UNHELD`).

Only a hint: when a page's versions turn out not to be prefixes of what the
reader holds (a fork, an edit that is not an append, a version evicted from
the cache), decoding finds a delta whose base is missing, and the saver
reads that page again naming nothing held (`NO_HINTS`): one statement with
every chain row, as consistent as any single statement.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers._rows import BlobRow, CheckpointRow
from checkpointkit.checkpointers.base import ListMemo, StorageCore, metadata_matches
from checkpointkit.checkpointers.postgres._codec import Fetched, summary

__all__ = ["NO_HINTS", "PageReader", "RecentLists", "SummaryReader"]

# A held list version: (namespace, channel) -> (version, chain, position in the chain).
Held = dict[tuple[str, str], tuple[str, str, int]]

#: The ``held_*`` parameters of a ``list`` page that names no held version.
NO_HINTS: Mapping[str, list[Any]] = {
    "held_threads": [],
    "held_namespaces": [],
    "held_channels": [],
    "held_chains": [],
    "held_seqs": [],
}


class RecentLists:
    """The list versions this process last stored or read, per thread.

    ``get_tuple`` and ``list`` name them to the server, which then sends no
    delta-chain rows for them: the storage core rebuilds them from its own
    cache (`StorageCore.cached_list`). Only a hint: when the core's copy
    turned out to be gone, the read asks again for the chain rows.

    Args:
        size: How many threads to remember.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._threads: OrderedDict[str, Held] = OrderedDict()

    def note(self, thread_id: str, ns: str, lists: Mapping[str, ListState]) -> None:
        if not lists:
            return
        with self._lock:
            known = self._threads.setdefault(thread_id, {})
            for channel, state in lists.items():
                known[(ns, channel)] = (state.version, state.chain, state.seq)
            self._threads.move_to_end(thread_id)
            while len(self._threads) > self._size:
                self._threads.popitem(last=False)

    def params(self, thread_id: str, ns: str) -> dict[str, str | None]:
        """Return the ``cached`` parameter of ``get_tuple`` for a thread and namespace.

        A JSON object {channel: version}, or None when nothing is held.
        """
        with self._lock:
            known = list(self._threads.get(thread_id, {}).items())
        held = {channel: version for (space, channel), (version, _, _) in known if space == ns}
        return {"cached": json.dumps(held, ensure_ascii=False) if held else None}

    def held(self, thread_id: str) -> list[tuple[str, str, str, str, int]]:
        """Return (thread, namespace, channel, chain, position) of the thread's known lists."""
        with self._lock:
            known = list(self._threads.get(thread_id, {}).items())
        return [(thread_id, ns, channel, chain, seq) for (ns, channel), (_, chain, seq) in known]

    def forget(self, thread_ids: Iterable[str]) -> None:
        with self._lock:
            for thread_id in thread_ids:
                self._threads.pop(thread_id, None)


class SummaryReader:
    """Turn the pages of a ``list_metadata`` into summaries (no values are read).

    Args:
        core: The storage core (to decode metadata for exact filtering).
        wanted: The validated filter, checked exactly on each candidate row.
    """

    def __init__(self, core: StorageCore, wanted: Mapping[str, Any]) -> None:
        self._core = core
        self._wanted = wanted

    def held(self) -> Mapping[str, list[Any]]:
        """Return the ``held_*`` parameters of the next page: none."""
        return NO_HINTS

    def select(self, page: Sequence[CheckpointRow], limit: int | None) -> list[CheckpointRow]:
        """Return the rows of a page that match the filter exactly, at most `limit`.

        The metadata index may over-select; candidates are checked like the
        memory checkpointer checks them.
        """
        wanted = self._wanted
        rows = [
            row
            for row in page
            if not wanted or metadata_matches(self._core.decode_metadata(row.metadata), wanted)
        ]
        return rows if limit is None else rows[:limit]

    def decode(self, rows: Sequence[CheckpointRow], fetched: Fetched) -> list[Any]:
        """Return the summaries of a page's rows."""
        return [summary(row) for row in rows]


class PageReader(SummaryReader):
    """Decode the pages of one ``list``, newest first, sharing what earlier pages rebuilt.

    Args:
        core: The storage core that decodes rows.
        wanted: The validated filter.
        cached: List versions of the core's cache to name to the server
            (`RecentLists.held`), or none.
        hinted: Name held versions to the server at all. A listing across
            threads or with a filter does not: its pages skip checkpoints,
            so their versions are seldom prefixes of what came before.
    """

    def __init__(
        self,
        core: StorageCore,
        wanted: Mapping[str, Any],
        cached: Sequence[tuple[str, str, str, str, int]] = (),
        *,
        hinted: bool = True,
    ) -> None:
        super().__init__(core, wanted)
        self._cached = list(cached)
        self._hinted = hinted
        self.memos: dict[tuple[str, str], ListMemo] = {}
        # The oldest list version rebuilt so far per (thread, namespace,
        # channel): the next page's versions are, most often, its prefixes.
        self._tails: dict[tuple[str, str, str], tuple[BlobRow, ListState]] = {}

    @classmethod
    def for_list(
        cls,
        core: StorageCore,
        recent: RecentLists,
        thread_id: str | None,
        wanted: Mapping[str, Any],
    ) -> PageReader:
        """Return the reader of a ``list`` of one thread (hinted) or of many (not)."""
        if thread_id is None or wanted:
            return cls(core, wanted, hinted=False)
        return cls(core, wanted, recent.held(thread_id))

    def held(self) -> Mapping[str, list[Any]]:
        """Return the ``held_*`` parameters of the next page (`NO_HINTS` when none)."""
        if not self._hinted:
            return NO_HINTS
        best: dict[tuple[str, str, str, str], int] = {}
        for thread_id, ns, channel, chain, seq in self._cached:
            key = (thread_id, ns, channel, chain)
            best[key] = max(seq, best.get(key, -1))
        for (thread_id, ns, channel), (_, state) in self._tails.items():
            key = (thread_id, ns, channel, state.chain)
            best[key] = max(state.seq, best.get(key, -1))
        if not best:
            return NO_HINTS
        return {
            "held_threads": [k[0] for k in best],
            "held_namespaces": [k[1] for k in best],
            "held_channels": [k[2] for k in best],
            "held_chains": [k[3] for k in best],
            "held_seqs": list(best.values()),
        }

    def decode(self, rows: Sequence[CheckpointRow], fetched: Fetched) -> list[Any]:
        """Decode a page's rows in order (checkpoint tuples).

        Raises:
            CorruptDataError: a list version cannot be rebuilt from the rows
                fetched (read the page again with `NO_HINTS`), or the stored
                data is damaged.
        """
        for (thread_id, ns, channel), (blob, state) in self._tails.items():
            blobs = fetched.blobs.get((thread_id, ns))
            if blobs is None:
                continue
            blobs.setdefault((channel, blob.version), blob)
            memo = self.memos.setdefault((thread_id, ns), ListMemo())
            memo.seed_prefixes(state, blob, blobs)
        out = []
        for row in rows:
            memo = self.memos.setdefault((row.thread_id, row.checkpoint_ns), ListMemo())
            blobs = fetched.blobs_of(row)
            tup, lists = self._core.decode_tuple(row, blobs, fetched.writes_of(row), memo=memo)
            for channel, state in lists.items():
                found = blobs.get((channel, state.version))
                if found is not None:
                    self._tails[(row.thread_id, row.checkpoint_ns, channel)] = (found, state)
            out.append(tup)
        return out
