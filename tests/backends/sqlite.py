"""The SQLite checkpointers for the contract suite: each on a new file under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer, SQLiteCheckpointer
from tests.contract.backends import SaverFactory, saver_options


@contextmanager
def sqlite(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    path = request.getfixturevalue("tmp_path") / f"{uuid4().hex}.sqlite"
    with SQLiteCheckpointer.from_conn_string(str(path), **saver_options(request)) as saver:
        yield saver


@contextmanager
def sqlite_async(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    path = request.getfixturevalue("tmp_path") / f"{uuid4().hex}.sqlite"
    saver = AsyncSQLiteCheckpointer(path, **saver_options(request))
    try:
        yield saver
    finally:
        saver.close()


FACTORIES: dict[str, SaverFactory] = {"sqlite": sqlite, "sqlite-async": sqlite_async}
