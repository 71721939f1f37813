"""Fixtures of the CLI tests: checkpointer URLs of each backend, filled by real graphs.

``backend_url`` is parametrised over SQLite, PostgreSQL and Redis URLs on
the harness's isolated storage (a tmp file, the test's schema, the test's
key prefix). A backend whose checkpointer does not import is marked skipped
with the import error as the reason, never dropped silently.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from checkpointkit.cli import main
from checkpointkit.connect import open_checkpointer
from tests.cli.graphs import Filled, fill


def _importable(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{module} does not import yet: {exc}"
    return None


def _backend(name: str, module: str) -> Any:
    reason = _importable(module)
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(name, id=name, marks=marks)


BACKENDS = [
    _backend("sqlite", "checkpointkit.checkpointers.sqlite"),
    _backend("postgres", "checkpointkit.checkpointers.postgres"),
    _backend("redis", "checkpointkit.checkpointers.redis"),
]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives sqlite:////abs


def postgres_url(postgres_uri: str) -> str:
    """The harness URI plus the checkpointer's ``schema`` (the URI's application_name)."""
    schema = parse_qs(urlsplit(postgres_uri).query)["application_name"][0]
    return f"{postgres_uri}&schema={schema}"


def redis_url_for(redis_url: str, redis_prefix: str) -> str:
    return f"{redis_url}?prefix={quote(redis_prefix, safe='')}"


def make_url(kind: str, request: pytest.FixtureRequest, name: str = "ck") -> str:
    """Return a URL of backend `kind` on the test's isolated storage.

    Different `name`s give separate stores: another file, table prefix or
    key prefix (under the test's own, so the harness still cleans it up).
    """
    if kind == "sqlite":
        return sqlite_url(request.getfixturevalue("tmp_path") / f"{name}.sqlite")
    if kind == "postgres":
        return postgres_url(request.getfixturevalue("postgres_uri")) + f"&table_prefix={name}_"
    prefix = request.getfixturevalue("redis_prefix") + f"{name}:"
    return redis_url_for(request.getfixturevalue("redis_url"), prefix)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each backend: sqlite, postgres, redis."""
    return str(request.param)


@pytest.fixture
def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    """An empty checkpointer URL of each backend."""
    return make_url(backend, request)


@pytest.fixture
def other_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A second, separate, empty checkpointer URL of the same backend."""
    return make_url(backend, request, "other")


@dataclass(frozen=True)
class Store:
    url: str
    filled: Filled


@pytest.fixture
def store(backend_url: str) -> Store:
    """A checkpointer URL of each backend, filled by `tests.cli.graphs.fill`."""
    with open_checkpointer(backend_url) as saver:
        filled = fill(saver)
    return Store(backend_url, filled)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run() -> Run:
    """Run ``checkpointkit`` in-process: ``run("threads", url, "--json")``."""

    def invoke(*argv: str, stdin: str | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        if stdin is None:
            code = main(list(argv), stdout=out, stderr=err)
        else:
            mp = pytest.MonkeyPatch()
            mp.setattr("sys.stdin", io.StringIO(stdin))
            try:
                code = main(list(argv), stdout=out, stderr=err)
            finally:
                mp.undo()
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture
def official_sqlite(tmp_path: Path) -> Store:
    """A database of LangGraph's own ``SqliteSaver``, filled by the real graphs."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = tmp_path / "official.sqlite"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        filled = fill(saver)
    return Store(f"langgraph+sqlite:///{path}", filled)


@pytest.fixture
def official_postgres(postgres_uri: str) -> Store:
    """Tables of LangGraph's own ``PostgresSaver`` in the test's schema, filled likewise."""
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(postgres_uri) as saver:
        saver.setup()
        filled = fill(saver)
    return Store(f"langgraph+{postgres_uri}", filled)
