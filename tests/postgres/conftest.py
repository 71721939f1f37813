"""Fixtures of the PostgreSQL checkpointer tests: savers on the test's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from tests.backends.postgres import schema_of


@pytest.fixture
def schema(postgres_uri: str) -> str:
    """The schema the test's URI uses (and its savers must be told to use)."""
    return schema_of(postgres_uri)


@pytest.fixture
def saver(postgres_uri: str, schema: str) -> Iterator[PostgresCheckpointer]:
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema, max_size=8) as made:
        yield made


@pytest.fixture
async def asaver(postgres_uri: str, schema: str) -> AsyncIterator[AsyncPostgresCheckpointer]:
    async with AsyncPostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, max_size=10
    ) as made:
        yield made
