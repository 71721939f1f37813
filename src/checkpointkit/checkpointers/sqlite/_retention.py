"""The retention policy of the SQLite checkpointer: ``ttl``, ``keep_last`` and `sweep`.

`RetentionMixin` gives the checkpointer `sweep` (delete idle threads, keep
the latest checkpoints of each namespace, reclaim the space freed) and the
"now and then" idle sweep a put may run with ``retain_on_put``. Idle threads
are found from the ``ck_threads`` summaries, then deleted in batches, each
re-checked inside its write transaction (a put may have revived one);
pruning keeps what pending writes and ``DeltaChannel`` values need
(`_store.prune_thread`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from checkpointkit.checkpointers.base import StorageCore
from checkpointkit.checkpointers.sqlite import _store
from checkpointkit.checkpointers.sqlite._connection import Database
from checkpointkit.checkpointers.sqlite._rowcache import RowCache
from checkpointkit.errors import ConfigurationError

__all__ = ["RetentionMixin", "SweepResult", "keep_of", "seconds_of"]

_IDLE_BATCH = 100


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one `sweep` removed."""

    deleted_threads: int  # idle threads deleted whole (``ttl``)
    pruned_checkpoints: int  # checkpoints removed by ``keep_last``


def seconds_of(ttl: timedelta | float | None) -> float | None:
    """Return a ``ttl`` option in seconds (None stays None).

    Raises:
        ConfigurationError: it is not a positive timedelta or number.
    """
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ConfigurationError(f"ttl must be a positive timedelta or seconds, got {ttl!r}")
    return float(seconds)


def keep_of(keep_last: int | None) -> int | None:
    """Return a validated ``keep_last`` option (None stays None).

    Raises:
        ConfigurationError: it is not an int >= 1.
    """
    if keep_last is None:
        return None
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ConfigurationError(f"keep_last must be an int >= 1, got {keep_last!r}")
    return keep_last


class RetentionMixin:
    """`sweep` and the retention bookkeeping of `_saver._SQLiteCheckpointerBase`."""

    ttl: float | None
    keep_last: int | None
    retain_on_put: bool
    _db: Database
    _core: StorageCore
    _rows: RowCache
    _sweep_lock: threading.Lock
    _last_idle_sweep: float

    def _ready(self) -> None:  # the checkpointer's: create the schema on first use
        raise NotImplementedError

    def sweep(
        self,
        *,
        ttl: timedelta | float | None = None,
        keep_last: int | None = None,
    ) -> SweepResult:
        """Apply the retention policy to every thread, and reclaim the space freed.

        Args:
            ttl: Delete threads in which no checkpoint was stored for this long
                (a `timedelta` or seconds; default: the constructor's ``ttl``).
            keep_last: Keep this many latest checkpoints per thread and
                namespace, plus what their pending writes and ``DeltaChannel``
                reconstruction need (default: the constructor's ``keep_last``).

        Returns:
            How many threads and checkpoints were removed.
        """
        seconds = seconds_of(ttl) if ttl is not None else self.ttl
        last = keep_of(keep_last) if keep_last is not None else self.keep_last
        self._ready()
        deleted = pruned = 0
        if seconds is not None:
            deleted = self._sweep_idle(time.time() - seconds)
        if last is not None:
            with self._db.read() as cur:
                crowded = _store.crowded_threads(cur, last)
            for thread_id in crowded:
                with self._db.write() as cur:
                    pruned += _store.prune_thread(cur, self._core, thread_id, last=last)
                self._forget([thread_id])
        if deleted or pruned:
            self._reclaim()
        return SweepResult(deleted, pruned)

    def _sweep_idle(self, cutoff: float, spare: str | None = None) -> int:
        with self._db.read() as cur:
            idle = [t for t in _store.idle_threads(cur, cutoff) if t != spare]
        deleted = 0
        for start in range(0, len(idle), _IDLE_BATCH):
            with self._db.write() as cur:
                # Re-checked under the write lock: a put may have revived one.
                doomed = _store.still_idle(cur, idle[start : start + _IDLE_BATCH], cutoff)
                _store.delete_threads(cur, doomed)
            self._forget(doomed)
            deleted += len(doomed)
        return deleted

    def _sweep_due(self) -> bool:
        return self.ttl is not None and (
            time.time() - self._last_idle_sweep >= min(self.ttl / 2, 60.0)
        )

    def _sweep_before_put(self) -> bool:
        """Whether a put should look for idle threads first (put and aput alike).

        Checked before any work, so the puts in between (nearly all of them)
        cost nothing: aput does not even hop to a worker thread.
        """
        return self.retain_on_put and self._sweep_due()

    def _sweep_idle_now_and_then(self, active: str) -> None:
        """Delete idle threads before a put, at most every ``min(ttl / 2, 60)`` s."""
        if self.ttl is None or not self._sweep_due():
            return
        now = time.time()
        if not self._sweep_lock.acquire(blocking=False):
            return  # another thread of this process is sweeping
        try:
            self._last_idle_sweep = now
            # The thread being written is active whatever its summary says.
            if self._sweep_idle(now - self.ttl, spare=active):
                self._reclaim()
        finally:
            self._sweep_lock.release()

    def _forget(self, thread_ids: Sequence[str]) -> None:
        """Drop what this process remembers of threads whose rows were deleted."""
        self._core.forget(thread_ids)
        self._rows.forget(thread_ids)

    def _reclaim(self) -> None:
        """Return free pages to the file system (the file uses incremental auto-vacuum)."""
        self._db.reclaim_space()

    async def asweep(
        self, *, ttl: timedelta | float | None = None, keep_last: int | None = None
    ) -> SweepResult:
        return await asyncio.to_thread(self.sweep, ttl=ttl, keep_last=keep_last)
