"""Give one test its own corner of a shared server, and clean it up afterwards.

* ``postgres_schema``: a fresh schema, handed out as a URI whose connections
  use it as ``search_path`` (``options=-csearch_path=...``); dropped CASCADE
  afterwards. A database per test would cost a ``CREATE DATABASE`` each.
* ``postgres_database``: a fresh database, dropped (``WITH (FORCE)``) afterwards.
* ``redis_prefix``: a unique key prefix ``ckt:<8 hex>:``; afterwards the keys
  under it, and only those, are deleted via ``SCAN`` (never ``FLUSHDB``), so
  tests can share one server, or one run can share a server with other users.

Each is a context manager so the plugin's fixtures stay one-liners and the
harness tests can nest two scopes in one test. The drivers (psycopg, redis-py)
are imported on use.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def check_postgres_uri(uri: str) -> None:
    """Raise ``ValueError`` unless ``uri`` is a ``postgresql://`` URI (the harness edits URIs)."""
    if urlsplit(uri).scheme not in {"postgresql", "postgres"}:
        raise ValueError(
            f"expected a postgresql:// URI, got {uri!r}; write the server address as "
            "postgresql://user[:password]@host:port/dbname"
        )


def with_search_path(uri: str, schema: str, application_name: str | None = None) -> str:
    """Return ``uri`` with ``-csearch_path=<schema>`` added to its ``options`` parameter.

    Options already in the URI are kept. ``application_name`` (when given)
    replaces the URI's own, so the harness can find the test's connections.

    Raises:
        ValueError: ``uri`` is not a ``postgresql://`` URI.
    """
    check_postgres_uri(uri)
    parts = urlsplit(uri)
    params = parse_qsl(parts.query, keep_blank_values=True)
    options = [value for key, value in params if key == "options"]
    replaced = {"options"} | ({"application_name"} if application_name else set())
    params = [(key, value) for key, value in params if key not in replaced]
    params.append(("options", " ".join([*options, f"-csearch_path={schema}"])))
    if application_name:
        params.append(("application_name", application_name))
    # libpq percent-decodes URI parameters but reads "+" literally: quote, not quote_plus.
    return urlunsplit(parts._replace(query=urlencode(params, quote_via=quote, safe="")))


def with_database(uri: str, dbname: str) -> str:
    """Return ``uri`` pointing at database ``dbname``.

    Raises:
        ValueError: ``uri`` is not a ``postgresql://`` URI.
    """
    check_postgres_uri(uri)
    return urlunsplit(urlsplit(uri)._replace(path=f"/{quote(dbname, safe='')}"))


@contextmanager
def postgres_schema(server_uri: str, *, drop_lock_timeout: str = "5s") -> Iterator[str]:
    """Create a uniquely named schema; yield a URI using it; drop it CASCADE afterwards.

    The URI's connections carry the schema name as ``application_name``: if a
    connection the test left open blocks the drop, it is terminated.

    Args:
        server_uri: Where to create the schema (a ``postgresql://`` URI).
        drop_lock_timeout: How long the drop waits for locks before terminating
            the test's connections (a PostgreSQL interval).

    Yields:
        The URI; ``current_schema()`` on its connections is the new schema.
    """
    import psycopg
    from psycopg import sql

    schema = _unique("ckt_")
    uri = with_search_path(server_uri, schema, application_name=schema)
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield uri
    finally:
        drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        with psycopg.connect(server_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(drop_lock_timeout))
            try:
                conn.execute(drop)
            except psycopg.errors.LockNotAvailable:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s AND pid <> pg_backend_pid()",
                    [schema],
                )
                conn.execute(drop)


@contextmanager
def postgres_database(server_uri: str) -> Iterator[str]:
    """Create a uniquely named database; yield its URI; drop it afterwards.

    Connections the test left open are terminated by the drop.

    Yields:
        The URI of the new database (same server, user and parameters).
    """
    import psycopg
    from psycopg import sql

    dbname = _unique("ckt_db_")
    uri = with_database(server_uri, dbname)
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield uri
    finally:
        with psycopg.connect(server_uri, autocommit=True) as conn:
            name = sql.Identifier(dbname)
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            else:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    [dbname],
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))


def new_redis_prefix(namespace: str = "ckt") -> str:
    """Return a fresh key prefix ``<namespace>:<8 hex>:``."""
    return f"{namespace}:{uuid.uuid4().hex[:8]}:"


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def delete_redis_prefix(url: str, prefix: str, *, cluster: bool = False) -> int:
    """Delete every key that starts with ``prefix`` (via ``SCAN``) and return how many.

    Args:
        url: The server (or, with ``cluster``, any cluster node).
        prefix: The key prefix; must not be empty.
        cluster: Scan every master of a Redis cluster.

    Raises:
        ValueError: ``prefix`` is empty (that would delete every key).
    """
    if not prefix:
        raise ValueError("refusing to delete keys under an empty prefix: that is every key")
    import redis
    import redis.cluster

    client: redis.Redis | redis.cluster.RedisCluster = (
        redis.cluster.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    )
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{_glob_escape(prefix)}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
        if isinstance(client, redis.cluster.RedisCluster):
            # RedisCluster.close() leaves each node's pool open (redis-py); an
            # unclosed socket would later fail whichever test the GC runs in.
            for node in client.get_nodes():
                if node.redis_connection is not None:
                    node.redis_connection.connection_pool.disconnect()
    return deleted


@contextmanager
def redis_prefix(url: str, *, cluster: bool = False) -> Iterator[str]:
    """Yield a fresh key prefix; afterwards delete the keys under it, and only those.

    Args:
        url: The server (or, with ``cluster``, any cluster node).
        cluster: The server is a Redis cluster.

    Yields:
        The prefix, ``ckt:<8 hex>:``.
    """
    prefix = new_redis_prefix()
    try:
        yield prefix
    finally:
        delete_redis_prefix(url, prefix, cluster=cluster)
