"""pytest fixtures that give each test a real PostgreSQL or Redis, isolated from the others.

Enable with ``pytest_plugins = ["tests.harness.plugin"]`` in ``tests/conftest.py``
(or ``-p tests.harness.plugin``).

Shared servers, one per session, started on first use: a throwaway server
from the local binaries, or the server named by an environment variable:

=======================  ==============================  ====================================
session fixture          yields                          override (``CHECKPOINTKIT_TEST_...``)
=======================  ==============================  ====================================
``postgres_server_uri``  superuser URI of the server     ``..._POSTGRES_URI``
``redis_server_url``     ``redis://host:port/db``        ``..._REDIS_URL``
``redis_cluster``        ``RedisClusterEndpoint``        ``..._REDIS_CLUSTER_URL`` (one node)
=======================  ==============================  ====================================

Per test, on those servers (see ``isolation``): ``postgres_uri`` (a fresh
schema as ``search_path``), ``postgres_database_uri`` (a fresh database),
``redis_url`` + ``redis_prefix`` and ``redis_cluster_prefix`` (a fresh key
prefix, its keys deleted afterwards). For tests that kill or restart a server,
``postgres_factory`` / ``redis_factory`` start private throwaway servers,
closed after the test.

A server that cannot be started or reached skips the test with the reason and
the command that fixes it; under ``CI=true`` it fails the test instead.
Nothing is mocked.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest

from tests.harness import isolation
from tests.harness.servers import (
    PostgresServer,
    RedisCluster,
    RedisServer,
    ServerError,
    ServerNotInstalledError,
)

ENV_POSTGRES = "CHECKPOINTKIT_TEST_POSTGRES_URI"
ENV_REDIS = "CHECKPOINTKIT_TEST_REDIS_URL"
ENV_REDIS_CLUSTER = "CHECKPOINTKIT_TEST_REDIS_CLUSTER_URL"
PIP_FIX = "pip install -e '.[all,dev]'"
_CONNECT_TIMEOUT = 5

_T = TypeVar("_T", PostgresServer, RedisServer, RedisCluster)


@dataclass(frozen=True)
class RedisClusterEndpoint:
    """Where to reach a Redis cluster.

    Attributes:
        uri: ``redis://host:port`` of one node, for ``redis.cluster.RedisCluster.from_url``.
        startup_nodes: ``(host, port)`` pairs, for ``redis.cluster.ClusterNode``.
    """

    uri: str
    startup_nodes: tuple[tuple[str, int], ...]


def in_ci() -> bool:
    """Tell whether the run is CI (``CI=true``), where a missing server is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str, fix: str) -> NoReturn:
    """Skip the test, or under ``CI=true`` fail it, saying why and what fixes it."""
    message = f"{reason}; to fix: {fix}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a backend that cannot run is a failure)", pytrace=False)
    pytest.skip(message)


def require(module: str) -> ModuleType:
    """Import the driver ``module`` or make the test unavailable, naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed ({exc})", PIP_FIX)


def start_or_unavailable(server: Callable[[], _T], env_var: str | None = None) -> _T:
    """Build and start a throwaway server, or make the test unavailable with the reason.

    Args:
        server: Builds the server (constructors look the binaries up).
        env_var: The variable that would point the tests at a running server instead.
    """
    instance: _T | None = None
    try:
        instance = server()
        instance.start()
        return instance
    except ServerNotInstalledError as exc:
        fix = f"{exc.fix} (or run tools/ensure_servers.py)"
        if env_var:
            fix += f", or set {env_var} to a running server"
        unavailable(exc.reason, fix)
    except ServerError as exc:
        if instance is not None:
            instance.close()
        fix = "see the server log above"
        if env_var:
            fix += f", or set {env_var} to a running server"
        unavailable(f"could not start a throwaway server: {exc}", fix)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server_uri() -> Iterator[str]:
    """Yield the superuser URI of the session's shared PostgreSQL server.

    ``$CHECKPOINTKIT_TEST_POSTGRES_URI`` when set (checked with one connection),
    else a throwaway ``PostgresServer`` (fast, non-durable settings),
    ``postgresql://postgres@127.0.0.1:<port>/postgres``, stopped at session end.
    """
    psycopg = require("psycopg")
    uri = os.environ.get(ENV_POSTGRES)
    if uri:
        try:
            isolation.check_postgres_uri(uri)
            with psycopg.connect(uri, connect_timeout=_CONNECT_TIMEOUT) as conn:
                conn.execute("SELECT 1")
        except (ValueError, psycopg.Error) as exc:
            unavailable(
                f"{ENV_POSTGRES}={uri!r} is not usable: {exc}", f"fix or unset {ENV_POSTGRES}"
            )
        yield uri
        return
    server = start_or_unavailable(PostgresServer, ENV_POSTGRES)
    try:
        yield server.uri
    finally:
        server.close()


@pytest.fixture
def postgres_uri(postgres_server_uri: str) -> Iterator[str]:
    """Yield a URI whose connections use a fresh schema as ``search_path``; drop it after.

    The URI adds ``options=-csearch_path%3D<schema>`` and
    ``application_name=<schema>`` (schema ``ckt_<12 hex>``) to the server URI.
    """
    with isolation.postgres_schema(postgres_server_uri) as uri:
        yield uri


@pytest.fixture
def postgres_database_uri(postgres_server_uri: str) -> Iterator[str]:
    """Yield the URI of a fresh database ``ckt_db_<12 hex>``; drop it (forcefully) after."""
    with isolation.postgres_database(postgres_server_uri) as uri:
        yield uri


@pytest.fixture
def postgres_factory() -> Iterator[Callable[..., PostgresServer]]:
    """Yield ``start(**kwargs) -> PostgresServer``: a private, started throwaway server.

    For tests that kill or restart the server. ``kwargs`` go to ``PostgresServer``;
    ``durable`` defaults to True here, so commits survive ``kill()``. Every server
    started is closed after the test.
    """
    servers: list[PostgresServer] = []

    def start(**kwargs: Any) -> PostgresServer:
        kwargs.setdefault("durable", True)
        server = start_or_unavailable(lambda: PostgresServer(**kwargs))
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            server.close()


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """Yield the URL of the session's shared Redis server.

    ``$CHECKPOINTKIT_TEST_REDIS_URL`` when set (checked with a ``PING``), else a
    throwaway ``RedisServer`` (no persistence), ``redis://127.0.0.1:<port>/0``.
    """
    redis = require("redis")
    url = os.environ.get(ENV_REDIS)
    if url:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT)
            try:
                client.ping()
            finally:
                client.close()
        except (ValueError, redis.RedisError) as exc:
            unavailable(f"{ENV_REDIS}={url!r} is not usable: {exc}", f"fix or unset {ENV_REDIS}")
        yield url
        return
    server = start_or_unavailable(RedisServer, ENV_REDIS)
    try:
        yield server.uri
    finally:
        server.close()


@pytest.fixture
def redis_prefix(redis_server_url: str) -> Iterator[str]:
    """Yield a fresh key prefix ``ckt:<8 hex>:``; after the test delete its keys (SCAN).

    Only keys under the prefix are deleted, never the database.
    """
    with isolation.redis_prefix(redis_server_url) as prefix:
        yield prefix


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """Return the shared Redis server's URL; keep the test's keys under ``redis_prefix``."""
    return redis_server_url


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Yield ``start(**kwargs) -> RedisServer``: a private, started throwaway server.

    For tests that kill or restart the server; e.g. ``redis_factory(appendonly=True)``
    keeps acknowledged writes across ``kill()``. Every server started is closed
    after the test.
    """
    servers: list[RedisServer] = []

    def start(**kwargs: Any) -> RedisServer:
        server = start_or_unavailable(lambda: RedisServer(**kwargs))
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(servers):
            server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterEndpoint]:
    """Yield the session's shared Redis cluster as a ``RedisClusterEndpoint``.

    ``$CHECKPOINTKIT_TEST_REDIS_CLUSTER_URL`` (one node) when set, else a throwaway
    ``RedisCluster`` of 3 masters and no replicas, started on first use (about 2 s).
    """
    require("redis")
    from redis.cluster import RedisCluster as ClusterClient
    from redis.exceptions import RedisClusterException, RedisError

    url = os.environ.get(ENV_REDIS_CLUSTER)
    if url:
        try:
            client = ClusterClient.from_url(url, socket_connect_timeout=_CONNECT_TIMEOUT)
            try:
                client.ping()
            finally:
                client.close()
        except (ValueError, RedisError, RedisClusterException) as exc:
            unavailable(
                f"{ENV_REDIS_CLUSTER}={url!r} is not usable: {exc}",
                f"fix or unset {ENV_REDIS_CLUSTER}",
            )
        parts = urlsplit(url)
        yield RedisClusterEndpoint(url, ((parts.hostname or "localhost", parts.port or 6379),))
        return
    cluster = start_or_unavailable(RedisCluster, ENV_REDIS_CLUSTER)
    try:
        yield RedisClusterEndpoint(cluster.uri, tuple(cluster.startup_nodes))
    finally:
        cluster.close()


@pytest.fixture
def redis_cluster_prefix(redis_cluster: RedisClusterEndpoint) -> Iterator[str]:
    """Yield a fresh key prefix on the shared cluster; afterwards delete its keys (all masters)."""
    with isolation.redis_prefix(redis_cluster.uri, cluster=True) as prefix:
        yield prefix


# --------------------------------------------------------------------------- reporting


def pytest_report_header(config: pytest.Config) -> str:
    """Say which servers the run uses, so a CI log shows it up front."""

    def source(env_var: str) -> str:
        return f"${env_var}" if os.environ.get(env_var) else "throwaway"

    mode = "CI=true: unavailable backends fail" if in_ci() else "unavailable backends skip"
    return (
        f"checkpointkit servers: postgres={source(ENV_POSTGRES)}, redis={source(ENV_REDIS)}, "
        f"redis-cluster={source(ENV_REDIS_CLUSTER)} ({mode})"
    )
