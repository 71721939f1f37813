"""Group commit: the puts of one process that arrive together share one transaction.

Every ``put`` and ``put_writes`` is a *job*, a function of the cursor of a
write transaction, handed to the database's `WriteQueue`. One thread at a
time is the queue's *leader*: it takes the jobs waiting (up to `MAX_BATCH`),
runs them in one ``BEGIN IMMEDIATE`` transaction, commits, and only then
tells each caller how its job went. A job that fails fails alone: the
transaction is rolled back and the batch run again with a savepoint around
each job (jobs only store rows planned beforehand, so running one twice is
safe); a failed ``BEGIN`` or ``COMMIT`` fails them all. A caller returns once
its job is committed, as before: batching changes how many commits there
are, not what a returned put means.

Who leads:

* a sync caller that finds no leader leads itself, inline (a single thread
  pays nothing more than the transaction); one that finds a leader waits,
  and when its job is done, returns. A sync leader commits until its own job
  is done, then hands the lead on to a waiting sync caller, or to the writer
  thread;
* async callers (``aput``, ``aput_writes``) never hold a thread while they
  wait: their jobs are run by the queue's writer thread, started when needed
  and stopped after a few idle seconds, which commits until the queue is
  empty and resolves the callers' futures on their event loops.

A job's caller gives up on it only by being interrupted or cancelled while it
waits; the job may then still be committed (as a cancelled ``asyncio.to_thread``
call would be).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, cast

from checkpointkit.checkpointers.sqlite._connection import Database, driver_error, process_id
from checkpointkit.errors import BackendUnavailableError

__all__ = ["MAX_BATCH", "WriteQueue"]

T = TypeVar("T")
MAX_BATCH = 64  # jobs per transaction: bounds how long one commit holds the write lock
_IDLE_EXIT = 5.0  # seconds the writer thread waits for work before it stops


class _JobFailed(Exception):
    """A job of a batch run without savepoints failed: run the batch again with them."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Job(Generic[T]):
    __slots__ = ("done", "error", "event", "fn", "future", "lead", "loop", "result")

    def __init__(self, fn: Callable[[sqlite3.Cursor], T]) -> None:
        self.fn = fn
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False
        self.lead = False  # a waiting sync caller chosen to lead next
        self.event: threading.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[T] | None = None


class WriteQueue:
    """The write jobs of one `Database` and the process, and who commits them.

    Args:
        db: The database the jobs write to.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._reset()

    def _reset(self) -> None:
        self._pid = process_id()
        self._lock = threading.Lock()
        self._pending: list[_Job[Any]] = []
        self._leading = False  # a thread is committing, or about to
        self._wake = threading.Condition(self._lock)
        self._writer: threading.Thread | None = None
        self._writer_due = False  # the writer thread is to lead next
        self._closed = False

    def _check_fork(self) -> None:
        if process_id() != self._pid:
            # Inherited through fork(): the leader and the writer thread are
            # the parent's, and their locks may be held forever here.
            self._reset()

    # -- callers -------------------------------------------------------------------

    def run(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``fn(cursor)`` in a write transaction; return its result once committed."""
        self._check_fork()
        job: _Job[T] = _Job(fn)
        with self._lock:
            self._pending.append(job)
            if self._leading:
                job.event = threading.Event()
            else:
                self._leading = True
        if job.event is not None:
            self._follow(job)
        if not job.done:
            self._lead(job)
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def _follow(self, job: _Job[Any]) -> None:
        """Wait until a leader committed `job`, or chose this caller to lead."""
        if job.event is None:
            return
        try:
            job.event.wait()
        except BaseException:
            with self._lock:
                if job in self._pending:  # not started: drop it
                    self._pending.remove(job)
            if job.lead:  # chosen just now: lead the others on
                self._hand_off()
            raise

    async def arun(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        """Run ``fn(cursor)`` in a write transaction by the writer thread; await the commit."""
        self._check_fork()
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(fn)
        job.loop = loop
        future: asyncio.Future[T] = loop.create_future()
        job.future = future
        with self._lock:
            self._pending.append(job)
            if not self._leading:
                self._leading = True
                self._start_writer()
        return await future

    # -- leading -------------------------------------------------------------------

    def _lead(self, own: _Job[Any] | None) -> None:
        """Commit batches until `own` is done (for the writer thread: until none is left)."""
        interrupted: BaseException | None = None
        finished = False
        try:
            while own is None or not own.done:
                with self._lock:
                    batch = self._pending[:MAX_BATCH]
                    del self._pending[:MAX_BATCH]
                    if not batch and own is None:
                        self._leading = False
                        finished = True
                        return
                if not batch:  # pragma: no cover - own is pending until done
                    raise RuntimeError("write queue lost a pending job")
                interrupted = self._commit(batch, own)
                if interrupted is not None:
                    break
        finally:
            if not finished:
                self._hand_off()
        if interrupted is not None:
            if own is not None and not own.done:
                with self._lock:  # its batch did not run: it is not stored
                    if own in self._pending:
                        self._pending.remove(own)
            raise interrupted

    def _hand_off(self) -> None:
        """Pass the lead to a waiting sync caller or the writer thread, or end it."""
        with self._lock:
            successor = next((j for j in self._pending if j.event is not None), None)
            if successor is not None and successor.event is not None:
                successor.lead = True
                successor.event.set()
            elif self._pending:
                self._start_writer()
            else:
                self._leading = False

    def _commit(self, batch: list[_Job[Any]], own: _Job[Any] | None) -> BaseException | None:
        """Run a batch in one transaction and tell its callers; return an interruption.

        The jobs run one after the other with no savepoint, as one failing is
        rare; if one does, the transaction is rolled back and the batch run
        again with a savepoint around each job, so that job fails alone.
        """
        interrupted: BaseException | None = None
        try:
            try:
                self._transaction(batch, alone=False)
            except _JobFailed:
                for job in batch:
                    job.error = job.result = None
                self._transaction(batch, alone=True)
        except BaseException as exc:  # nothing of the batch is stored
            if not isinstance(exc, Exception):
                interrupted = exc  # KeyboardInterrupt and the like: the leader re-raises
            for job in batch:
                if job.error is None:
                    job.error = (
                        exc
                        if job is own or isinstance(exc, Exception)
                        else BackendUnavailableError(
                            f"the write was rolled back: the thread committing it was "
                            f"interrupted ({type(exc).__name__}); retry it"
                        )
                    )
                job.result = None
        self._settle(batch)
        return interrupted

    def _transaction(self, batch: list[_Job[Any]], *, alone: bool) -> None:
        with self._db.write() as cur:
            for job in batch:
                if alone:
                    self._run_alone(cur, job)
                    continue
                try:
                    job.result = job.fn(cur)
                except Exception as exc:
                    if len(batch) == 1:
                        raise
                    raise _JobFailed(exc) from exc

    def _run_alone(self, cur: sqlite3.Cursor, job: _Job[Any]) -> None:
        """Run one job of a batch; a failure rolls back that job only."""
        cur.execute("SAVEPOINT ck_job")
        try:
            job.result = job.fn(cur)
        except Exception as exc:
            cur.execute("ROLLBACK TO ck_job")
            job.error = driver_error(exc, self._db.timeout)
        cur.execute("RELEASE ck_job")

    def _settle(self, batch: Iterable[_Job[Any]]) -> None:
        """Tell the callers of a finished batch: sync ones directly, async ones on their loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
        for job in batch:
            if job.loop is not None:
                by_loop.setdefault(job.loop, []).append(job)
                continue
            job.done = True
            if job.event is not None:
                job.event.set()
        for loop, jobs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, jobs)
            except RuntimeError:  # the loop is closed: nobody awaits these
                pass

    # -- the writer thread ---------------------------------------------------------

    def _start_writer(self) -> None:
        """Make the writer thread lead next (called with the lock held)."""
        self._writer_due = True
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write_forever, name="checkpointkit-sqlite-writer", daemon=True
            )
            self._writer.start()
        else:
            self._wake.notify()

    def _write_forever(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                if not self._writer_due and not self._wake.wait_for(
                    lambda: self._writer_due or self._closed, _IDLE_EXIT
                ):
                    if self._writer is me:
                        self._writer = None
                    return
                if self._closed and not self._writer_due:
                    return
                self._writer_due = False
            try:
                self._lead(None)
            except BaseException:  # noqa: S110 - its jobs were told; keep serving the queue
                pass

    def close(self) -> None:
        """Let the writer thread stop once the queue is empty."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()


def _resolve(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        future = job.future
        if future is None or future.done():  # the caller was cancelled
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)
