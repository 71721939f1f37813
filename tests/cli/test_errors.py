"""Every failure is one ``checkpointkit: error:`` line, passwords redacted, exit 2 or 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpointkit.connect import open_checkpointer
from tests.cli.conftest import Run, Store


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("checkpointkit: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["threads", "ftp://host/x"], "unknown checkpointer URL scheme 'ftp'"),
        (["threads", "nonsense"], "not a checkpointer URL"),
        (["threads", "sqlite:///{tmp}/missing.db"], "no SQLite database at"),
        (["threads", "sqlite:///{tmp}/db.sqlite", "--filter", "user"], "is not key=value"),
        (["history", "sqlite:///{tmp}/db.sqlite", "t", "--limit", "0"], "must be at least 1"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], needle: str, run: Run, tmp_path: Path) -> None:
    with open_checkpointer(f"sqlite:///{tmp_path}/db.sqlite"):
        pass
    result = run(*(a.format(tmp=tmp_path) for a in argv))
    assert result.code == 2
    assert needle in result.err
    assert result.err.count("Traceback") == 0


def test_missing_command_is_a_usage_error(run: Run) -> None:
    result = run()
    assert result.code == 2
    assert "required" in result.err
    assert run("--help").code == 0
    assert "copy" in run("--help").out


def test_unknown_thread_and_checkpoint_exit_1(store: Store, run: Run) -> None:
    for argv in (
        ["history", store.url, "nope"],
        ["show", store.url, "nope"],
        ["show", store.url, "chat", "ffffffff"],
        ["diff", store.url, "chat", store.filled.fork, "ffffffff"],
        ["fork", store.url, "nope", "x", "new"],
        ["export", store.url, "nope"],
        ["copy", store.url, store.url, "--thread", "nope"],
    ):
        result = run(*argv)
        assert result.code == 1, (argv, result)
        line = _one_error_line(result.err)
        assert "nope" in line or "ffffffff" in line
        assert result.out == ""


def test_ambiguous_checkpoint_prefix(store: Store, run: Run) -> None:
    result = run("show", store.url, "chat", store.filled.fork[:4])
    assert result.code == 1
    assert "give more characters" in _one_error_line(result.err)


def test_unreachable_redis_redacts_the_password(run: Run) -> None:
    result = run("threads", "redis://:s3cret-pw@127.0.0.1:1/0?prefix=x")
    assert result.code == 1
    line = _one_error_line(result.err)
    assert "s3cret-pw" not in line
    assert "unreachable" in line.lower()


@pytest.mark.slow
def test_unreachable_postgres_is_one_line_within_the_timeout(run: Run) -> None:
    result = run("threads", "postgresql://u:s3cret-pw@127.0.0.1:1/db", "--timeout", "1")
    assert result.code == 1
    line = _one_error_line(result.err)
    assert "s3cret-pw" not in line
    official = run("threads", "langgraph+postgresql://u:s3cret-pw@127.0.0.1:1/db")
    assert official.code == 1
    assert "s3cret-pw" not in _one_error_line(official.err)
