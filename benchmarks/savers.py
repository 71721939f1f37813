"""The savers a benchmark compares: checkpointkit's and LangGraph's, by backend.

`families()` yields, for each backend available here, a `Family`: factories
for checkpointkit's saver and LangGraph's official one on the same storage
(the same SQLite directory, the same PostgreSQL server). PostgreSQL and Redis
come from ``CHECKPOINTKIT_BENCH_POSTGRES_URI`` / ``CHECKPOINTKIT_BENCH_REDIS_URL``
or from throwaway servers started from the machine's binaries, as the tests do.
A backend whose checkpointer or server is missing is skipped with a note.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from checkpointkit import MemoryCheckpointer

Factory = Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]


@dataclass
class Family:
    """One backend: checkpointkit's saver and the official one, if there is one."""

    name: str
    ours: Factory
    official: Factory | None
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _just(make: Callable[[], BaseCheckpointSaver[Any]]) -> Iterator[BaseCheckpointSaver[Any]]:
    yield make()


def _memory() -> Family:
    return Family(
        "memory",
        lambda: _just(MemoryCheckpointer),
        lambda: _just(InMemorySaver),
    )


def _sqlite(workdir: str) -> Family | None:
    try:
        from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
    except ImportError:
        return None

    def path() -> str:
        return os.path.join(workdir, f"{uuid.uuid4().hex[:8]}.sqlite")

    @contextlib.contextmanager
    def official() -> Iterator[BaseCheckpointSaver[Any]]:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(path(), check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()

    return Family(
        "sqlite",
        lambda: SQLiteCheckpointer.from_conn_string(path()),
        official,
        ["both on WAL files in one temp directory; official: default pragmas"],
    )


@contextlib.contextmanager
def families(workdir: str) -> Iterator[list[Family]]:
    """Yield every backend family available on this machine."""
    found = [_memory()]
    sqlite_family = _sqlite(workdir)
    if sqlite_family is not None:
        found.append(sqlite_family)
    yield found
