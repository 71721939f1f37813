"""fork, prune and sweep, end to end on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checkpointkit.connect import open_checkpointer
from tests.cli.conftest import Run, Store
from tests.cli.graphs import snapshot


def test_fork_copies_the_ancestor_chain(store: Store, run: Run) -> None:
    result = run("fork", store.url, "chat", store.filled.fork[:30], "copy", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["thread_id"] == "copy"
    assert doc["checkpoint_id"] == store.filled.fork
    with open_checkpointer(store.url) as saver:
        forked = snapshot(saver, "copy")
        source = {row[1]: row for row in snapshot(saver, "chat")}
    assert doc["checkpoints"] == len(forked)
    # the fork's chain: the update_state checkpoint back to the input
    chain, row = [], source[store.filled.fork]
    while row is not None:
        chain.append(row[1])
        row = source.get(row[2])
    assert sorted(r[1] for r in forked) == sorted(chain)
    for row in forked:
        assert row[3:] == source[row[1]][3:]  # metadata, checkpoint, pending writes

    again = run("fork", store.url, "chat", store.filled.fork, "copy")
    assert again.code == 1
    assert "exists already" in again.err
    text = run("fork", store.url, "chat", store.filled.first_reply, "copy2")
    assert text.code == 0
    assert "into copy2" in text.out


def test_prune_keep_latest_then_delete(store: Store, run: Run) -> None:
    result = run("prune", store.url, "chat", "--json")
    assert result.code == 0, result.err
    (chat,) = json.loads(result.out)
    assert chat["before"] > chat["after"] >= 1
    latest = json.loads(run("show", store.url, "chat", "--json").out)
    assert latest["checkpoint_id"] == store.filled.latest

    deleted = run("prune", store.url, "chat", "nested", "--strategy", "delete")
    assert deleted.code == 0, deleted.err
    assert "nested: " in deleted.out
    assert json.loads(run("threads", store.url, "--json").out) == []

    missing = run("prune", store.url, "chat")
    assert missing.code == 1
    assert "no thread 'chat'" in missing.err


def test_sweep_keep_last(store: Store, run: Run) -> None:
    with open_checkpointer(store.url) as saver:
        can_sweep = callable(getattr(saver, "sweep", None))
    result = run("sweep", store.url, "--keep-last", "2", "--json")
    if not can_sweep:  # Redis expires threads with key TTLs: the command says so
        assert result.code == 2
        assert "has no sweep" in result.err
        return
    assert result.code == 0, result.err
    assert any(v > 0 for v in json.loads(result.out).values())
    rows = json.loads(run("history", store.url, "chat", "--json").out)
    assert len(rows) <= 2 + 1  # kept, plus what their pending writes need
    assert run("sweep", store.url, "--ttl", "3600").code == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sweep", "{url}"], "needs a policy"),
        (["sweep", "{url}", "--ttl", "-1"], "must be positive"),
        (["prune", "{url}", "chat", "--strategy", "all"], "invalid choice"),
    ],
)
def test_maintenance_usage_errors(argv: list[str], needle: str, run: Run, tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    with open_checkpointer(f"sqlite:///{path}"):
        pass
    result = run(*(a.format(url=f"sqlite:///{path}") for a in argv))
    assert result.code == 2
    assert needle in result.err
    assert "Traceback" not in result.err
