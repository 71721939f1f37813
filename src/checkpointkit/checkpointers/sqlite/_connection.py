"""Connections and transactions to one SQLite database, safe across threads and forks.

A file database gives each thread its own connection for the length of an
operation, opened with ``isolation_level=None`` and the pragmas of
`_schema.default_pragmas`, and keeps it in a small LIFO pool between
operations: LangGraph starts a new thread pool for every ``invoke``, and
opening a connection per new thread would cost more than the put itself. A
connection is never used by two threads at once. Connections are dropped, not
closed, in a child process after ``fork()`` (the pid is checked on every
checkout): SQLite connections must not cross a fork. An in-memory database,
or a connection the caller hands in, is one shared connection guarded by a
lock.

Every query runs inside `Database.read` (``BEGIN``, for a consistent
snapshot across the queries of one operation) or `Database.write` (``BEGIN
IMMEDIATE``, taking SQLite's write lock up front so two writers never
deadlock upgrading a read lock). Any exception, cancellation and
``KeyboardInterrupt`` included, rolls the transaction back; ``COMMIT`` runs
only on success. Writers of one process queue on a process-wide mutex per
file before asking SQLite for its lock, so they wait in turn instead of
sleep-polling in SQLite's busy handler. Driver errors are translated at this
boundary: a lock held past the timeout becomes `LockTimeoutError`, a damaged
file `CorruptDataError`, an unreachable one `BackendUnavailableError`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from checkpointkit.checkpointers.sqlite._schema import apply_pragmas
from checkpointkit.errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptDataError,
    LockTimeoutError,
)

__all__ = ["Database", "driver_error", "is_memory_target", "process_id", "translate_errors"]

# SQLite's primary result codes (the sqlite3 module names them from Python 3.11).
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNAVAILABLE = {3, 8, 10, 13, 14}  # PERM, READONLY, IOERR, FULL, CANTOPEN

T = TypeVar("T")

_MAX_IDLE = 16  # idle connections kept per database (more are closed on return)

# This process's id, kept up to date across fork() (os.getpid is a system call,
# and every checkout compares it).
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def process_id() -> int:
    """Return this process's id without a system call."""
    return _PID[0]


# One mutex per database file and process: writers of the process take turns.
_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()
_WRITERS_PID = os.getpid()


def _writer_mutex(key: str) -> threading.Lock:
    global _WRITERS_PID
    with _WRITERS_LOCK:
        if os.getpid() != _WRITERS_PID:  # locks inherited through fork may be held
            _WRITERS.clear()
            _WRITERS_PID = os.getpid()
        return _WRITERS.setdefault(key, threading.Lock())


def is_memory_target(target: str) -> bool:
    """Tell whether a path or URI names an in-memory database."""
    return target == ":memory:" or target == "" or "mode=memory" in target


def _error_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def driver_error(exc: BaseException, timeout: float) -> BaseException:
    """Return the checkpointkit error for an exception raised in a transaction.

    Driver errors that are bugs or misuse (a SQL syntax error, say), and
    exceptions that are not the driver's, are returned as they are; a
    translated error is chained to the original.
    """
    found: BaseException = exc
    if isinstance(exc, UnicodeEncodeError):
        found = ConfigurationError(
            f"text with a lone surrogate cannot be stored in SQLite: {exc}; "
            "ids, namespaces and channel names must be valid unicode"
        )
    elif isinstance(exc, sqlite3.Error):
        code = _error_code(exc)
        text = str(exc)
        if code in _BUSY or "database is locked" in text or "table is locked" in text:
            found = LockTimeoutError(
                f"the SQLite database stayed locked by another writer for more than "
                f"{timeout:g}s ({text}); retry, raise `timeout`, or find the process holding "
                "a transaction open"
            )
        elif code in _CORRUPT or "malformed" in text or "not a database" in text:
            found = CorruptDataError(f"the SQLite database file is damaged: {text}")
        elif code in _UNAVAILABLE or "unable to open" in text:
            found = BackendUnavailableError(f"the SQLite database cannot be used: {text}")
        elif isinstance(exc, sqlite3.ProgrammingError) and "same thread" in text:
            found = ConfigurationError(
                "the sqlite3.Connection given to the checkpointer was created with "
                "check_same_thread=True; create it with check_same_thread=False"
            )
    if found is not exc:
        found.__cause__ = exc
    return found


def translate_errors(exc: sqlite3.Error, timeout: float) -> NoReturn:
    """Raise the checkpointkit error for a driver error, chained to it (see `driver_error`)."""
    raise driver_error(exc, timeout)


class Database:
    """Connections to one SQLite database and the transactions run on them.

    Args:
        target: A file path or ``file:`` URI, ``":memory:"``, or an open
            ``sqlite3.Connection`` (used as the one shared connection; the
            caller keeps ownership and closes it).
        pragmas: Validated pragmas applied to every connection opened here.
        timeout: Seconds to wait for the write lock before `LockTimeoutError`.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | sqlite3.Connection,
        pragmas: Mapping[str, str | int],
        timeout: float,
    ) -> None:
        self.pragmas = dict(pragmas)
        self.timeout = timeout
        self._pid = os.getpid()
        self._idle: list[sqlite3.Connection] = []  # LIFO: the warmest cache first
        self._pool_lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._shared_lock = threading.RLock()
        self._owns_shared = False
        self._closed = False
        self.path: str | None
        if isinstance(target, sqlite3.Connection):
            self._shared = target
            self.path = _file_of(target)
            self._shared_ready = False
        else:
            location = os.fspath(target)
            if not isinstance(location, str):
                raise ConfigurationError(f"database path must be text, got {location!r}")
            if is_memory_target(location):
                self._shared = self._connect(location or ":memory:")
                self._owns_shared = True
                self._shared_ready = True
                self.path = None
            else:
                uri = location.startswith("file:")
                self.path = location if uri else os.path.abspath(location)
        self._mutex_key = self.path or f"shared:{id(self)}"

    # -- connections ---------------------------------------------------------------

    def _connect(self, location: str) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                location,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,  # `close` may run on another thread
                uri=location.startswith("file:"),
            )
        except sqlite3.Error as exc:
            translate_errors(exc, self.timeout)
        try:
            apply_pragmas(conn, self.pragmas)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                translate_errors(exc, self.timeout)
            raise
        return conn

    def _checkout(self) -> sqlite3.Connection:
        """Take an idle connection of this process, or open one."""
        if self._closed:
            raise BackendUnavailableError("the checkpointer is closed")
        if _PID[0] != self._pid:
            # A forked child must not touch its parent's connections: forget
            # them without closing (closing could checkpoint the parent's WAL).
            self._idle = []
            self._pool_lock = threading.Lock()
            self._pid = _PID[0]
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        if self.path is None:  # pragma: no cover - memory targets are shared
            raise BackendUnavailableError("no database path")
        return self._connect(self.path)

    def _checkin(self, conn: sqlite3.Connection) -> None:
        """Give a connection back for the next operation of any thread."""
        if _PID[0] != self._pid:
            return  # opened before a fork: not ours to reuse or close
        with self._pool_lock:
            if not self._closed and not conn.in_transaction and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._shared is None:
            conn = self._checkout()
            try:
                yield conn
            finally:
                self._checkin(conn)
            return
        if not self._shared_lock.acquire(timeout=self.timeout):
            raise LockTimeoutError(
                f"the shared SQLite connection stayed busy for more than {self.timeout:g}s"
            )
        try:
            if self._closed:
                raise BackendUnavailableError("the checkpointer is closed")
            if not self._shared_ready:
                # A caller's connection: apply our pragmas once, keep its settings.
                try:
                    apply_pragmas(self._shared, self.pragmas)
                except sqlite3.Error as exc:
                    translate_errors(exc, self.timeout)
                self._shared_ready = True
            yield self._shared
        finally:
            self._shared_lock.release()

    # -- transactions ----------------------------------------------------------------

    def run(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        """Call ``fn(cursor)`` outside an explicit transaction (autocommit).

        Each statement then reads its own snapshot: for a read whose one
        statement is all it needs from the file, this spares ``BEGIN`` and
        ``COMMIT``. Anything that must see one snapshot uses `read`.
        """
        if self._shared is None:
            conn = self._checkout()
            try:
                cur = conn.cursor()
                try:
                    return fn(cur)
                finally:
                    cur.close()
            except sqlite3.Error as exc:
                translate_errors(exc, self.timeout)
            finally:
                self._checkin(conn)
        with self._connection() as conn:
            try:
                if conn.in_transaction:  # a caller's: its uncommitted rows are not ours
                    raise ConfigurationError(
                        "the SQLite connection has a transaction open; commit or roll it "
                        "back before using the checkpointer on it"
                    )
                cur = conn.cursor()
                cur.row_factory = None  # a caller's connection may have a row factory
                try:
                    return fn(cur)
                finally:
                    cur.close()
            except sqlite3.Error as exc:
                translate_errors(exc, self.timeout)

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """Run the body in one read transaction (a consistent snapshot)."""
        if self._shared is None:  # the common case, without a nested context manager
            conn = self._checkout()
            try:
                yield from self._transaction(conn, "BEGIN")
            finally:
                self._checkin(conn)
            return
        with self._connection() as conn:
            yield from self._transaction(conn, "BEGIN")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """Run the body in one write transaction, committed only if it succeeds.

        Raises:
            LockTimeoutError: the write lock was not obtained within the timeout.
        """
        mutex = _writer_mutex(self._mutex_key) if self._shared is None else None
        if mutex is not None and not mutex.acquire(timeout=self.timeout):
            raise LockTimeoutError(
                f"other writers of this process held {self.path!r} for more than "
                f"{self.timeout:g}s; retry or raise `timeout`"
            )
        try:
            if self._shared is None:
                conn = self._checkout()
                try:
                    yield from self._transaction(conn, "BEGIN IMMEDIATE")
                finally:
                    self._checkin(conn)
            else:
                with self._connection() as conn:
                    yield from self._transaction(conn, "BEGIN IMMEDIATE")
        finally:
            if mutex is not None:
                mutex.release()

    def _transaction(self, conn: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Cursor]:
        try:
            busy = conn.in_transaction
            cur = conn.cursor()
        except sqlite3.Error as exc:  # e.g. a caller's connection bound to its thread
            translate_errors(exc, self.timeout)
        if busy:
            cur.close()
            raise ConfigurationError(
                "the SQLite connection has a transaction open; commit or roll it back "
                "before using the checkpointer on it"
            )
        cur.row_factory = None  # a caller's connection may have a row factory
        try:
            cur.execute(begin)
        except sqlite3.Error as exc:
            cur.close()
            translate_errors(exc, self.timeout)
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            # Any failure, cancellation and Ctrl-C included: nothing is kept.
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the original error matters; SQLite rolls back on close
            if isinstance(exc, (sqlite3.Error, UnicodeEncodeError)):
                raise driver_error(exc, self.timeout)  # noqa: B904 - chained inside
            raise
        finally:
            cur.close()

    def reclaim_space(self) -> None:
        """Give the file's free pages back (``PRAGMA incremental_vacuum``), in autocommit."""
        mutex = _writer_mutex(self._mutex_key) if self._shared is None else None
        if mutex is not None and not mutex.acquire(timeout=self.timeout):
            raise LockTimeoutError(f"other writers held {self.path!r} for too long")
        try:
            with self._connection() as conn:
                try:
                    # executescript steps the pragma to the end; execute() would
                    # step it once (no result columns) and free a single page.
                    conn.executescript("PRAGMA incremental_vacuum;")
                except sqlite3.Error as exc:
                    translate_errors(exc, self.timeout)
        finally:
            if mutex is not None:
                mutex.release()

    def close(self) -> None:
        """Close the connections opened here (a caller's connection stays open)."""
        self._closed = True
        with self._pool_lock:
            conns, self._idle = self._idle, []
        if os.getpid() == self._pid:
            for conn in conns:  # those in use are closed when they come back
                conn.close()
        if self._shared is not None and self._owns_shared:
            with self._shared_lock:
                self._shared.close()


def _file_of(conn: sqlite3.Connection) -> str | None:
    try:
        for _, name, file in conn.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return str(file) or None
    except sqlite3.Error:
        return None
    return None
