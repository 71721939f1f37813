"""Open any checkpointer from a URL: the one entry point of the CLI, examples and tools.

- ``memory://``: `MemoryCheckpointer`
- ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:``:
  `SQLiteCheckpointer`
- ``postgresql://user@host:5432/db?schema=name`` (or ``postgres://``): `PostgresCheckpointer`
- ``redis://host:6379/0?prefix=ck`` (or ``rediss://``; ``cluster=1`` for Redis Cluster):
  `RedisCheckpointer`
- ``langgraph+sqlite:///path.db``: LangGraph's official `SqliteSaver` on its database
- ``langgraph+postgresql://...``: LangGraph's official `PostgresSaver`

Query parameters that name checkpointer options (``schema``, ``prefix``,
``cluster``...) are passed to the checkpointer and removed from the URL; the
rest of the URL goes to the driver untouched. A bad URL raises
`ConfigurationError` naming it; a missing optional dependency raises
`MissingDependencyError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.errors import ConfigurationError, MissingDependencyError

__all__ = ["SCHEMES", "aopen_checkpointer", "open_checkpointer", "redact"]

SCHEMES = (
    "memory",
    "sqlite",
    "postgresql",
    "postgres",
    "redis",
    "rediss",
    "langgraph+sqlite",
    "langgraph+postgresql",
)

# Query parameters that are checkpointer options, with how to parse each.
_OPTIONS: dict[str, dict[str, Callable[[str], Any]]] = {
    "postgres": {"schema": str, "table_prefix": str, "min_size": int, "max_size": int},
    "redis": {"prefix": str, "cluster": lambda v: v.lower() in ("1", "true", "yes")},
}


def redact(url: str) -> str:
    """Return `url` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _split(url: str) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"not a checkpointer URL: {url!r}; expected one of "
            + ", ".join(f"{s}://..." for s in SCHEMES)
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown checkpointer URL scheme {scheme!r} in {redact(url)!r}; "
            f"use one of {', '.join(SCHEMES)}"
        )
    family = "postgres" if "postgres" in scheme else "redis" if "redis" in scheme else scheme
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        parse = _OPTIONS.get(family, {}).get(key)
        if parse is None:
            rest.append((key, value))
            continue
        try:
            options[key] = parse(value)
        except ValueError as exc:
            raise ConfigurationError(f"bad value {value!r} for {key!r} in {redact(url)!r}") from exc
    if family in ("sqlite", "langgraph+sqlite"):
        # keep the path verbatim: urlunsplit would fold sqlite:////abs into sqlite://abs
        driver_url = url.split("?", 1)[0]
    else:
        driver_url = urlunsplit(parts._replace(query=urlencode(rest)))
    return scheme, driver_url, options


def _sqlite_path(driver_url: str) -> str:
    path = driver_url.split("://", 1)[1]
    if not path.startswith("/"):
        raise ConfigurationError(f"SQLite URLs look like sqlite:///path.db, got {driver_url!r}")
    path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
    if not path:
        raise ConfigurationError(f"SQLite URL {driver_url!r} names no file")
    return path


def _missing(feature: str, extra: str, exc: ImportError) -> MissingDependencyError:
    return MissingDependencyError.for_extra(feature, extra, exc.name or extra)


@contextlib.contextmanager
def open_checkpointer(url: str, **options: Any) -> Iterator[BaseCheckpointSaver[Any]]:
    """Open the sync checkpointer a URL names, set up and ready; close it after.

    Args:
        url: A checkpointer URL (see the module docstring).
        **options: Extra checkpointer options (e.g. ``serde=``), overriding
            those in the URL.

    Raises:
        ConfigurationError: the URL is malformed or names an unknown scheme.
        MissingDependencyError: the backend's optional dependency is missing.
    """
    scheme, driver_url, url_options = _split(url)
    options = {**url_options, **options}
    if scheme == "memory":
        from checkpointkit import MemoryCheckpointer

        yield MemoryCheckpointer(**options)
    elif scheme == "sqlite":
        from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer

        with SQLiteCheckpointer.from_conn_string(_sqlite_path(driver_url), **options) as saver:
            yield saver
    elif scheme in ("postgresql", "postgres"):
        try:
            from checkpointkit.checkpointers.postgres import PostgresCheckpointer
        except ImportError as exc:
            raise _missing("PostgresCheckpointer", "postgres", exc) from exc
        with PostgresCheckpointer.from_conn_string(driver_url, **options) as saver:
            yield saver
    elif scheme in ("redis", "rediss"):
        try:
            from checkpointkit.checkpointers.redis import RedisCheckpointer
        except ImportError as exc:
            raise _missing("RedisCheckpointer", "redis", exc) from exc
        with RedisCheckpointer.from_conn_string(driver_url, **options) as saver:
            yield saver
    elif scheme == "langgraph+sqlite":
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver
        except ImportError as exc:
            raise ConfigurationError(
                "reading LangGraph's SQLite databases needs langgraph-checkpoint-sqlite: "
                "pip install langgraph-checkpoint-sqlite"
            ) from exc
        path = _sqlite_path(driver_url.removeprefix("langgraph+"))
        with SqliteSaver.from_conn_string(path) as official:
            yield official
    else:  # langgraph+postgresql
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as exc:
            raise ConfigurationError(
                "reading LangGraph's PostgreSQL databases needs langgraph-checkpoint-postgres: "
                "pip install langgraph-checkpoint-postgres"
            ) from exc
        with PostgresSaver.from_conn_string(driver_url.removeprefix("langgraph+")) as official:
            official.setup()
            yield official


@contextlib.asynccontextmanager
async def aopen_checkpointer(url: str, **options: Any) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the async checkpointer a URL names (see `open_checkpointer`)."""
    scheme, driver_url, url_options = _split(url)
    options = {**url_options, **options}
    if scheme == "memory":
        from checkpointkit import MemoryCheckpointer

        yield MemoryCheckpointer(**options)
    elif scheme == "sqlite":
        from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer

        async with AsyncSQLiteCheckpointer.from_conn_string(
            _sqlite_path(driver_url), **options
        ) as saver:
            yield saver
    elif scheme in ("postgresql", "postgres"):
        try:
            from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer
        except ImportError as exc:
            raise _missing("AsyncPostgresCheckpointer", "postgres", exc) from exc
        async with AsyncPostgresCheckpointer.from_conn_string(driver_url, **options) as saver:
            yield saver
    elif scheme in ("redis", "rediss"):
        try:
            from checkpointkit.checkpointers.redis import AsyncRedisCheckpointer
        except ImportError as exc:
            raise _missing("AsyncRedisCheckpointer", "redis", exc) from exc
        async with AsyncRedisCheckpointer.from_conn_string(driver_url, **options) as saver:
            yield saver
    else:
        raise ConfigurationError(
            f"{scheme}:// opens LangGraph's own saver; use open_checkpointer() (sync) for it"
        )
