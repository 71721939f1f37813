"""The threads index: what its scores mean, and the newest-first walk listings take over it.

Each thread has one entry in one of the `THREAD_BUCKETS` sorted sets (see
`_keys`). Its score is an upper bound, in microseconds since the Unix epoch, of
the thread's last write: at least the time of each of its checkpoint ids (a
uuid6 holds its creation time) and the ``ts`` of each of its root checkpoints.
Every put raises it (``ZADD GT``) in the round trip that stores the checkpoint;
nothing lowers it, so after checkpoints are deleted it may be too high. That
costs a listing one extra thread to read, never a wrong answer, because a
listing reads each thread it takes and only hands one out once nothing still
unread can come before it (`ts_floor`, `id_floor`).

That is what makes ``list_threads(limit=k)`` (newest root ``ts`` first, as the
memory checkpointer orders them) and ``list(None, limit=k)`` (newest checkpoint
id first) read about k threads instead of all of them: `IndexWalk` reads the
buckets a few entries at a time, highest score first, merged.

A ``ts`` or checkpoint id whose time cannot be read (not a UTC ISO timestamp as
``datetime.isoformat`` writes it, not a lowercase uuid6, or outside the years
1827-2112 that fit a double exactly) scores `UNKNOWN`, above every time: such
threads are read first, and nothing is handed out before they are. So are
the threads of an index written before scores were times (they counted
announcements: small integers, below `_LEGACY`), until their next put.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from checkpointkit.checkpointers._rows import CheckpointRow
from checkpointkit.checkpointers.redis._codec import text

__all__ = [
    "UNKNOWN",
    "IndexWalk",
    "id_floor",
    "put_score",
    "score_arg",
    "ts_floor",
]

# Microsecond scores stay exact integers in a double below 2**53; 2**52 leaves
# room for the +1 bumps of `_scripts.TOUCH`.
UNKNOWN = float(2**52)
_LOWEST = -float(2**52)  # earlier times all score this (it stays a valid upper bound)
# Scores in [1, _LEGACY) are counters of the index's first layout, not times
# (times there are the first 71 minutes of 1970): read as UNKNOWN.
_LEGACY = 2**32
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_UUID_EPOCH_US = 0x01B21DD213814000 // 10  # 1582-10-15 to 1970-01-01, in microseconds
_UUID6 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-6[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")


def _clamped(us: int) -> float:
    if us >= UNKNOWN:
        return UNKNOWN
    return float(max(us, _LOWEST))


def ts_score(ts: str) -> float:
    """Return the score of a checkpoint ``ts``: its time in microseconds, or `UNKNOWN`."""
    if not ts.endswith("+00:00"):
        return UNKNOWN
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError:
        return UNKNOWN
    if moment.isoformat() != ts:  # only the canonical form sorts as its time does
        return UNKNOWN
    return _clamped((moment - _EPOCH) // _MICROSECOND)


def id_score(checkpoint_id: str) -> float:
    """Return the score of a checkpoint id: its uuid6 time in microseconds, or `UNKNOWN`."""
    if len(checkpoint_id) != 36 or not _UUID6.fullmatch(checkpoint_id):
        return UNKNOWN
    digits = checkpoint_id[:8] + checkpoint_id[9:13] + checkpoint_id[15:18]
    return _clamped(int(digits, 16) // 10 - _UUID_EPOCH_US)


def put_score(rows: list[CheckpointRow]) -> float:
    """Return the score a write of `rows` (to one thread) raises the thread's entry to."""
    score = _LOWEST
    for row in rows:
        score = max(score, id_score(row.checkpoint_id))
        if not row.checkpoint_ns:
            score = max(score, ts_score(row.ts))
    return score


def score_arg(score: float) -> str:
    """Format a score for ZADD (scores are whole microseconds)."""
    return str(int(score))


def ts_floor(bound: float) -> str | None:
    """Return the greatest ``ts`` a thread scoring at most `bound` can have (None: any).

    A thread read whose ``ts`` is greater than this comes before every thread
    still unread (for an equal ``ts`` the thread id decides, so those must be
    read first).
    """
    if bound >= UNKNOWN:
        return None
    return (_EPOCH + math.floor(max(bound, _LOWEST)) * _MICROSECOND).isoformat()


def id_floor(bound: float) -> str | None:
    """Return a checkpoint id above every id of threads scoring at most `bound`.

    None when `bound` says nothing (`UNKNOWN`). An id at least this comes
    before every checkpoint of the threads still unread.
    """
    if bound >= UNKNOWN:
        return None
    # The first 100 ns above the bound (no score is below _LOWEST but a foreign one).
    t = (math.floor(max(bound, _LOWEST)) + 1 + _UUID_EPOCH_US) * 10
    return f"{t >> 28:08x}-{(t >> 12) & 0xFFFF:04x}-6{t & 0xFFF:03x}-0000-000000000000"


@dataclass(eq=False)
class _Bucket:
    """Where a walk stands in one bucket: entries above `last` (and `ties` at it) are read."""

    key: str
    last: float = math.inf
    ties: int = 0
    done: bool = False
    buffered: int = 0  # entries read but not taken yet


@dataclass(order=True)
class _Entry:
    sort: tuple[float, int]  # (-rank, order read)
    thread_id: str = field(compare=False)
    rank: float = field(compare=False)  # the score as a bound: UNKNOWN for legacy ones
    score: float = field(compare=False)  # as stored (what `_scripts.UNINDEX` compares)
    bucket: _Bucket = field(compare=False)


Request = tuple[str, str, str, int, int]  # ZREVRANGEBYSCORE key max min LIMIT offset count


class IndexWalk:
    """Takes threads from the index highest score first, merging its buckets.

    I/O-free: the caller reads the ranges `requests` names (``ZREVRANGEBYSCORE
    key max min WITHSCORES LIMIT offset count``) and hands each reply to
    `fill`, then `take`s threads; `bound` is the highest score a thread not
    taken yet can have.
    """

    def __init__(self, buckets: list[str]) -> None:
        self._buckets = {key: _Bucket(key) for key in buckets}
        self._legacy = {key: _Bucket(key, done=True) for key in buckets}
        self._heap: list[_Entry] = []
        self._seen: set[str] = set()
        self._order = 0
        self._started = False

    def requests(self, count: int) -> list[Request]:
        """Return the ranges to read before a take: the next `count` entries of some buckets."""
        out: list[Request] = []
        if not self._started:  # legacy entries sort last but must be read first
            self._started = True
            out += [(key, f"({_LEGACY}", "1", 0, -1) for key in self._legacy]
        out += [
            (b.key, "+inf" if b.last == math.inf else repr(b.last), "-inf", b.ties, count)
            for b in self._buckets.values()
            if not b.done and not b.buffered
        ]
        return out

    def fill(self, request: Request, entries: list[tuple[bytes | str, float]]) -> None:
        """Take the reply to one of the `requests`."""
        key, _, low, _, count = request
        legacy = low != "-inf"
        bucket = self._legacy[key] if legacy else self._buckets[key]
        for member, score in entries:
            if not legacy:
                if score == bucket.last:
                    bucket.ties += 1
                else:
                    bucket.last, bucket.ties = score, 1
            rank = UNKNOWN if legacy else score
            self._order += 1
            heapq.heappush(
                self._heap, _Entry((-rank, self._order), text(member), rank, score, bucket)
            )
            bucket.buffered += 1
        if not legacy:
            bucket.done = len(entries) < count

    def bound(self) -> float | None:
        """Return the highest score of a thread not taken yet (None: every thread is taken)."""
        bounds = [b.last for b in self._buckets.values() if not b.done and not b.buffered]
        if self._heap:
            bounds.append(self._heap[0].rank)
        return max(bounds) if bounds else None

    def take(self, count: int) -> list[tuple[str, str, float]]:
        """Return up to `count` (thread id, bucket key, score), highest score first.

        Stops early when a bucket's read entries run out, so it is read again
        before anything lower is taken.
        """
        out: list[tuple[str, str, float]] = []
        while self._heap and len(out) < count:
            entry = heapq.heappop(self._heap)
            bucket = entry.bucket
            bucket.buffered -= 1
            if entry.thread_id not in self._seen:  # a thread met again after a put moved it
                self._seen.add(entry.thread_id)
                out.append((entry.thread_id, bucket.key, entry.score))
            if not bucket.buffered and not bucket.done:
                break
        return out
