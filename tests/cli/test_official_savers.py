"""The commands on LangGraph's own savers, which lack list_threads, fork_thread, prune, sweep."""

from __future__ import annotations

import json

from langgraph.types import Command

from checkpointkit.connect import open_checkpointer
from tests.cli.conftest import Run, Store
from tests.cli.graphs import chat_graph, snapshot


def test_threads_history_and_show_on_the_official_savers(
    official_sqlite: Store, official_postgres: Store, run: Run
) -> None:
    for store in (official_sqlite, official_postgres):
        threads = json.loads(run("threads", store.url, "--json").out)
        assert {t["thread_id"]: t["metadata"]["user"] for t in threads} == {
            "chat": "ada",
            "nested": "bob",
        }
        assert [t["thread_id"] for t in threads] == ["nested", "chat"]  # newest first
        bob = json.loads(run("threads", store.url, "--filter", "user=bob", "--json").out)
        assert [t["thread_id"] for t in bob] == ["nested"]
        rows = json.loads(run("history", store.url, "chat", "--json").out)
        assert {r["checkpoint_id"] for r in rows} >= {store.filled.fork, store.filled.latest}
        doc = json.loads(run("show", store.url, "chat", store.filled.fork, "--json").out)
        assert [m["content"] for m in doc["values"]["messages"]] == ["hi", "echo: hi", "forked"]


def test_fork_without_fork_thread_copies_the_chain_and_resumes(
    official_sqlite: Store, run: Run
) -> None:
    result = run(
        "fork", official_sqlite.url, "chat", official_sqlite.filled.fork, "branch", "--json"
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["method"] == "copy"
    with open_checkpointer(official_sqlite.url) as saver:
        source = {row[1]: row for row in snapshot(saver, "chat")}
        forked = snapshot(saver, "branch")
        assert forked
        for row in forked:
            assert row[2:] == source[row[1]][2:]
        # LangGraph sees the same state, and finishes the run the way the source did
        # (the fork point holds the review task's writes from the source's resume)
        graph = chat_graph(saver)
        at = official_sqlite.filled.fork
        branch = graph.get_state({"configurable": {"thread_id": "branch", "checkpoint_id": at}})
        original = graph.get_state({"configurable": {"thread_id": "chat", "checkpoint_id": at}})
        assert branch.values == original.values
        assert branch.next == original.next == ("review",)
        out = graph.invoke(Command(resume="other"), {"configurable": {"thread_id": "branch"}})
        latest = graph.get_state({"configurable": {"thread_id": "chat"}})
        assert out == latest.values


def test_prune_on_the_official_saver_deletes_only(official_sqlite: Store, run: Run) -> None:
    keep = run("prune", official_sqlite.url, "chat")
    assert keep.code == 2
    assert "use --strategy delete" in keep.err
    gone = run("prune", official_sqlite.url, "chat", "--strategy", "delete", "--json")
    assert gone.code == 0, gone.err
    assert json.loads(gone.out)[0]["after"] == 0
    sweep = run("sweep", official_sqlite.url, "--ttl", "10")
    assert sweep.code == 2
    assert "SqliteSaver has no sweep" in sweep.err
