"""threads, history, show and diff, end to end on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import json

from checkpointkit.connect import open_checkpointer
from checkpointkit.transfer import read_thread
from tests.cli.conftest import Run, Store


def test_threads_lists_filters_and_limits(store: Store, run: Run) -> None:
    result = run("threads", store.url, "--json")
    assert result.code == 0, result.err
    threads = {t["thread_id"]: t for t in json.loads(result.out)}
    assert set(threads) == {"chat", "nested"}
    assert threads["chat"]["metadata"]["user"] == "ada"
    assert threads["chat"]["checkpoint_count"] >= 8
    assert threads["chat"]["created_at"] <= threads["chat"]["updated_at"]

    only = json.loads(run("threads", store.url, "--filter", "user=bob", "--json").out)
    assert [t["thread_id"] for t in only] == ["nested"]
    assert json.loads(run("threads", store.url, "--filter", "user=nobody", "--json").out) == []
    assert len(json.loads(run("threads", store.url, "--limit", "1", "--json").out)) == 1

    table = run("threads", store.url)
    assert table.code == 0
    assert "chat" in table.out
    assert "nested" in table.out
    assert '"user": "ada"' in table.out


def test_history_shows_writers_next_nodes_and_interrupts(store: Store, run: Run) -> None:
    result = run("history", store.url, "chat", "--json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    ids = [r["checkpoint_id"] for r in rows]
    assert ids == sorted(ids, reverse=True)  # newest first
    by_id = {r["checkpoint_id"]: r for r in rows}
    first = by_id[store.filled.first_reply]
    assert first["writers"] == ["model"]
    assert first["updated"] == ["messages"]
    assert first["next"] == ["review"]
    assert first["interrupts"] == 1
    assert "__interrupt__" in first["pending_writes"]
    fork = by_id[store.filled.fork]
    assert fork["source"] == "update"
    assert fork["parent_checkpoint_id"] == store.filled.first_reply
    inputs = [r for r in rows if r["source"] == "input"]
    assert inputs
    assert all(r["next"] == ["__start__"] for r in inputs)

    assert len(json.loads(run("history", store.url, "chat", "--limit", "2", "--json").out)) == 2

    table = run("history", store.url, "chat")
    assert table.code == 0
    assert store.filled.first_reply in table.out
    assert "model → messages" in table.out


def test_history_and_show_of_a_subgraph_namespace(store: Store, run: Run) -> None:
    show = json.loads(run("show", store.url, "nested", "--json").out)
    assert show["values"]["log"][-2:] == ["inner got 42", "after"]
    rows = json.loads(run("history", store.url, "nested", "--json").out)
    assert all(r["checkpoint_ns"] == "" for r in rows)
    with open_checkpointer(store.url) as saver:
        (ns,) = {r.checkpoint_ns for r in read_thread(saver, "nested")} - {""}
    inner = json.loads(run("history", store.url, "nested", "--ns", ns, "--json").out)
    assert inner
    assert {r["checkpoint_ns"] for r in inner} == {ns}
    assert any(r["writers"] == ["ask"] for r in inner)
    sub = json.loads(run("show", store.url, "nested", "--ns", ns, "--json").out)
    assert sub["checkpoint_ns"] == ns
    assert sub["values"]["log"][-1] == "inner got 42"


def test_show_renders_messages_as_type_and_content(store: Store, run: Run) -> None:
    result = run("show", store.url, "chat", store.filled.fork, "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["checkpoint_id"] == store.filled.fork
    assert [(m["type"], m["content"]) for m in doc["values"]["messages"]] == [
        ("human", "hi"),
        ("ai", "echo: hi"),
        ("human", "forked"),
    ]
    assert doc["next"] == ["review"]
    assert doc["interrupts"][0]["value"] == {"question": "approve?", "n": 3}
    assert "branch:to:review" not in doc["values"]
    internal = json.loads(run("show", store.url, "chat", store.filled.fork, "--all", "--json").out)
    assert "branch:to:review" in internal["values"]

    # the latest by default, an id prefix, and the text form
    latest = json.loads(run("show", store.url, "chat", "--json").out)
    assert latest["checkpoint_id"] == store.filled.latest
    assert latest["values"]["approved"] is False
    assert latest["next"] == []
    prefix = json.loads(run("show", store.url, "chat", store.filled.fork[:30], "--json").out)
    assert prefix["checkpoint_id"] == store.filled.fork
    text = run("show", store.url, "chat", store.filled.fork)
    assert text.code == 0
    assert "[human] hi" in text.out
    assert "[ai] echo: hi" in text.out
    assert "next: review" in text.out


def test_diff_lists_messages_added_by_id(store: Store, run: Run) -> None:
    result = run("diff", store.url, "chat", store.filled.first_reply, store.filled.latest, "--json")
    assert result.code == 0, result.err
    diff = json.loads(result.out)
    assert diff["changed"] == ["messages"]
    assert diff["added"] == ["approved"]
    messages = diff["channels"][0]
    assert [m["id"] for m in messages["items_added"]] == ["f1"]
    assert messages["items_removed"] == []

    back = json.loads(
        run("diff", store.url, "chat", store.filled.latest, store.filled.first_reply, "--json").out
    )
    assert back["removed"] == ["approved"]
    assert [m["id"] for m in back["channels"][0]["items_removed"]] == ["f1"]

    text = run("diff", store.url, "chat", store.filled.first_reply, store.filled.latest)
    assert "~ messages: +1 -0 item(s)" in text.out
    assert "+ [human] forked" in text.out
    assert "+ approved: false" in text.out
    same = run("diff", store.url, "chat", store.filled.fork, store.filled.fork)
    assert "no differences" in same.out
