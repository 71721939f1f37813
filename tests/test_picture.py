"""The history picture: Mermaid text and rendered files that name every checkpoint.

A chat thread is forked with ``fork_thread`` (and, in one test, branched by
time travel inside the thread); the picture must show each branch and name
every checkpoint by its short id, in the Mermaid text and in the SVG file.
Run on every checkpointer opened by URL, the servers included.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer
from checkpointkit.connect import open_checkpointer
from checkpointkit.demo import build_graph
from checkpointkit.errors import ConfigurationError
from checkpointkit.picture import (
    HistoryGraph,
    ahistory_graph,
    build_history,
    history_graph,
    mermaid,
    save_picture,
    short_id,
)


def _schema(uri: str) -> str:
    import psycopg

    with psycopg.connect(uri) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    assert row[0]
    return str(row[0])


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/picture.sqlite"
    if request.param == "postgres":
        uri: str = request.getfixturevalue("postgres_uri")
        return f"{uri}&schema={_schema(uri)}"
    base: str = request.getfixturevalue("redis_url")
    return f"{base}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def saver(url: str) -> Iterator[Any]:
    with open_checkpointer(url) as opened:
        yield opened


def _say(graph: Any, thread_id: str, text: str) -> None:
    graph.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread_id}})


def _forked(saver: Any) -> tuple[Any, str]:
    """Chat three turns on 'main', fork the end of turn 1 into 'side', chat there."""
    graph = build_graph(saver)
    for text in ("hello", "my name is Ada", "what is my name?"):
        _say(graph, "main", text)
    history = list(graph.get_state_history({"configurable": {"thread_id": "main"}}))
    point = next(s for s in reversed(history) if not s.next and s.metadata["step"] > 0)
    saver.fork_thread(point.config, "side")
    _say(graph, "side", "my name is Grace")
    return graph, str(point.config["configurable"]["checkpoint_id"])


def _all_ids(saver: Any, *threads: str) -> set[str]:
    return {
        str(t.config["configurable"]["checkpoint_id"])
        for thread in threads
        for t in saver.list({"configurable": {"thread_id": thread}})
    }


def _svg_text(path: Path) -> str:
    """Return the text of every <text> element of an SVG file (ids must be real text)."""
    root = ET.parse(path).getroot()
    return "\n".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


def test_forked_thread_picture_names_every_checkpoint(saver: Any, tmp_path: Path) -> None:
    _, point = _forked(saver)
    ids = _all_ids(saver, "main", "side")
    history = history_graph(saver, "main")

    assert {n.checkpoint_id for n in history.nodes} == ids
    assert history.lanes == ("main", "side")
    assert history.fork_points == [point]
    assert history.heads.keys() == {"main", "side"}
    # the fork's own checkpoints are on its lane; what it copied stays on main's
    side_only = _all_ids(saver, "side") - _all_ids(saver, "main")
    assert {n.checkpoint_id for n in history.nodes if n.lane == 1} == side_only
    assert all(n.parent_id in ids or n.step == -1 for n in history.nodes)

    flowchart = history.to_mermaid()
    git_graph = history.to_mermaid("gitGraph")
    svg = save_picture(history, tmp_path / "history.svg")
    png = save_picture(history, tmp_path / "history.png")
    mmd = save_picture(history, tmp_path / "history.mmd")
    assert svg.stat().st_size > 0
    assert png.read_bytes().startswith(b"\x89PNG")
    svg_text = _svg_text(svg)
    for cid in ids:
        short = short_id(cid)
        assert history.node(cid).short_id == short
        assert short in flowchart
        assert short in git_graph
        assert short in svg_text, f"{short} is missing from the SVG"
    assert mmd.read_text() == flowchart
    assert flowchart.count(" --> ") == len(ids) - 1  # a tree: every node but the root
    assert 'branch "side"' in git_graph
    assert "main" in svg_text
    assert "side" in svg_text


def test_the_fork_draws_the_same_picture(saver: Any) -> None:
    _forked(saver)
    from_main = history_graph(saver, "main")
    from_side = history_graph(saver, "side")
    assert {n.checkpoint_id for n in from_side.nodes} == {n.checkpoint_id for n in from_main.nodes}
    assert from_side.lanes == ("side", "main")
    assert history_graph(saver, "main", forks=False).lanes == ("main",)
    assert history_graph(saver, "main", forks=False, threads=["side"]).lanes == ("main", "side")


def test_time_travel_inside_one_thread_is_a_branch(tmp_path: Path) -> None:
    saver = MemoryCheckpointer()
    graph = build_graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    for text in ("hello", "my name is Ada"):
        _say(graph, "t", text)
    first_turn = next(
        s for s in reversed(list(graph.get_state_history(config))) if s.metadata["step"] == 1
    )
    graph.invoke({"messages": [HumanMessage("my name is Grace")]}, first_turn.config)

    history = history_graph(saver, "t")
    left_behind = [lane for lane in history.lanes if lane.startswith("t @")]
    assert history.lanes[0] == "t"
    assert len(left_behind) == 1
    assert history.fork_points == [first_turn.config["configurable"]["checkpoint_id"]]
    text = history.to_mermaid("gitGraph")
    assert text.count("branch ") == 1
    for node in history.nodes:
        assert node.short_id in text
    assert "head of t" in history.to_mermaid()


async def test_async_reading_matches(tmp_path: Path) -> None:
    async with AsyncSQLiteCheckpointer.from_conn_string(str(tmp_path / "a.sqlite")) as saver:
        graph = build_graph(saver)
        for text in ("hello", "my name is Ada"):
            await graph.ainvoke(
                {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": "main"}}
            )
        history = [
            s async for s in graph.aget_state_history({"configurable": {"thread_id": "main"}})
        ]
        await saver.afork_thread(history[2].config, "side")
        from_async = await ahistory_graph(saver, "main")
        assert from_async == history_graph(saver, "main")
        assert from_async.lanes == ("main",)  # the fork added no checkpoint of its own
        assert from_async.head_of(history[2].config["configurable"]["checkpoint_id"]) == ["side"]


def test_langgraph_saver_without_list_threads() -> None:
    saver = InMemorySaver()
    graph = build_graph(saver)
    _say(graph, "t", "hello")
    text = mermaid(saver, "t")
    for cid in _all_ids(saver, "t"):
        assert short_id(cid) in text


def test_errors_are_typed(tmp_path: Path) -> None:
    saver = MemoryCheckpointer()
    with pytest.raises(ConfigurationError, match="no checkpoints"):
        history_graph(saver, "nobody")
    _say(build_graph(saver), "t", "hello")
    history = history_graph(saver, "t")
    with pytest.raises(ConfigurationError, match="picture format"):
        save_picture(history, tmp_path / "history.gif")
    with pytest.raises(ConfigurationError, match="Mermaid style"):
        history.to_mermaid("sequence")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not in the history"):
        history.node("nope")


def test_short_ids_grow_until_distinct() -> None:
    a = "1f0a0000-0000-6000-8000-aaaa00001234"
    b = "1f0a0000-0000-6000-8001-bbbb00001234"  # the same last 8 digits
    assert short_id(a) == short_id(b) == "00001234"
    items = [_tuple("t", a, None, -1), _tuple("t", b, a, 0)]
    history: HistoryGraph = build_history("t", {"t": items})
    assert [n.short_id for n in history.nodes] == ["aaaa00001234", "bbbb00001234"]


def test_markdown_file_is_a_mermaid_block(tmp_path: Path) -> None:
    saver = MemoryCheckpointer()
    _say(build_graph(saver), "t", "hello")
    text = save_picture(history_graph(saver, "t"), tmp_path / "h.md").read_text()
    assert re.fullmatch(r"```mermaid\nflowchart LR\n.*```\n", text, re.DOTALL)


def _tuple(thread: str, cid: str, parent: str | None, step: int) -> Any:
    from langgraph.checkpoint.base import CheckpointTuple, empty_checkpoint

    def conf(checkpoint_id: str) -> Any:
        return {
            "configurable": {
                "thread_id": thread,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
            }
        }

    return CheckpointTuple(
        config=conf(cid),
        checkpoint=empty_checkpoint(),
        metadata={"source": "loop", "step": step, "parents": {}},
        parent_config=conf(parent) if parent else None,
    )
