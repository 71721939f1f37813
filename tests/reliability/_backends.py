"""How the reliability tests open savers: in this process, and in child processes.

A *spec* is a JSON-able dict naming a backend and where its data lives (a
file, a URI and schema, a URL and key prefix); `saver_from_spec` opens a saver
on it, so a child process reaches the same data as the test that spawned it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import uuid4

if TYPE_CHECKING:  # child processes import this module without pytest
    import pytest

BACKENDS = ("memory", "sqlite", "postgres", "redis")
DURABLE_BACKENDS = ("sqlite", "postgres", "redis")


def spec_for(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Return the spec of a fresh, isolated store of `backend` for this test."""
    if backend == "memory":
        return {"kind": "memory"}
    if backend == "sqlite":
        path = request.getfixturevalue("tmp_path") / f"{uuid4().hex}.sqlite"
        return {"kind": "sqlite", "path": str(path)}
    if backend == "postgres":
        from tests.backends.postgres import schema_of

        uri = request.getfixturevalue("postgres_uri")
        return {"kind": "postgres", "uri": uri, "schema": schema_of(uri)}
    if backend == "redis":
        return {
            "kind": "redis",
            "url": request.getfixturevalue("redis_url"),
            "prefix": request.getfixturevalue("redis_prefix"),
        }
    raise ValueError(f"unknown backend {backend!r}")


@contextmanager
def saver_from_spec(spec: dict[str, Any], **options: Any) -> Iterator[Any]:
    """Open a sync saver on the store `spec` names; close it afterwards."""
    kind = spec["kind"]
    if kind == "memory":
        from checkpointkit import MemoryCheckpointer

        yield MemoryCheckpointer(**options)
    elif kind == "sqlite":
        from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer

        with SQLiteCheckpointer.from_conn_string(spec["path"], **options) as saver:
            yield saver
    elif kind == "postgres":
        from checkpointkit.checkpointers.postgres import PostgresCheckpointer

        options.setdefault("max_size", 4)
        with PostgresCheckpointer.from_conn_string(
            spec["uri"], schema=spec["schema"], **options
        ) as saver:
            yield saver
    elif kind == "redis":
        from checkpointkit.checkpointers.redis import RedisCheckpointer

        with RedisCheckpointer.from_conn_string(
            spec["url"], prefix=spec["prefix"], **options
        ) as saver:
            yield saver
    else:
        raise ValueError(f"unknown backend {kind!r}")


@contextmanager
def open_saver(backend: str, request: pytest.FixtureRequest, **options: Any) -> Iterator[Any]:
    """Yield a fresh, isolated sync saver of `backend` for this test."""
    with saver_from_spec(spec_for(backend, request), **options) as saver:
        yield saver
