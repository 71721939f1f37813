"""The PostgreSQL checkpointers for the contract suite, on the test's own schema.

``postgres`` is the sync class; ``postgres-async`` the async class, opened on
an event loop of its own in a helper thread. The contract tests call it from
their own loop, in both modes: sync calls wait on its loop (as from any other
thread), and async calls are awaited across loops (`_bridges.on_own_loop`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from tests.backends._loop import background_loop
from tests.contract.backends import saver_options

if TYPE_CHECKING:  # not at run time: the contract imports this module to discover it
    from tests.contract.backends import SaverFactory


def schema_of(uri: str) -> str:
    """Return the schema a harness URI's connections use (its ``search_path``)."""
    with psycopg.connect(uri) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    assert row[0], "the harness URI names no schema"
    return str(row[0])


@contextmanager
def postgres(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    uri = request.getfixturevalue("postgres_uri")
    with PostgresCheckpointer.from_conn_string(
        uri, schema=schema_of(uri), max_size=4, **saver_options(request)
    ) as saver:
        yield saver


@contextmanager
def postgres_async(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    uri = request.getfixturevalue("postgres_uri")
    opened = AsyncPostgresCheckpointer.from_conn_string(
        uri, schema=schema_of(uri), max_size=4, **saver_options(request)
    )
    with background_loop() as host:
        saver = host.run(opened.__aenter__())
        try:
            yield saver
        finally:
            host.run(opened.__aexit__(None, None, None))


FACTORIES: dict[str, SaverFactory] = {"postgres": postgres, "postgres-async": postgres_async}
