"""checkpointkit.inspect and checkpointkit.transfer used as a library, on memory savers."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import Send

from checkpointkit import MemoryCheckpointer
from checkpointkit.errors import InvalidFilterError
from checkpointkit.inspect import (
    diff_states,
    next_nodes,
    parse_filter,
    render_value,
)
from checkpointkit.serde import MsgpackSerializer
from checkpointkit.transfer import (
    Progress,
    ThreadReport,
    copy_threads,
    digest_records,
    export_threads,
    fork_checkpoint,
    import_threads,
    read_thread,
)
from tests.cli.graphs import chat_graph, fill, snapshot


def _tuple(values: dict[str, Any], **checkpoint: Any) -> CheckpointTuple:
    return CheckpointTuple(
        config={"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "c"}},
        checkpoint={"v": 4, "id": "c", "ts": "", "channel_values": values, **checkpoint},  # type: ignore[typeddict-item]
        metadata={"source": "loop", "step": 1},  # type: ignore[typeddict-item]
    )


def test_parse_filter_reads_json_values_or_strings() -> None:
    assert parse_filter(["source=loop", "step=2", "ok=true", 'name="3"', "x=a=b"]) == {
        "source": "loop",
        "step": 2,
        "ok": True,
        "name": "3",
        "x": "a=b",
    }
    for bad in ("novalue", "=x"):
        with pytest.raises(InvalidFilterError, match="key=value"):
            parse_filter([bad])


@dataclass
class Point:
    x: int
    y: float


def test_render_value_is_json_safe() -> None:
    value = {
        "messages": [
            HumanMessage("hi", id="1", name="ada"),
            AIMessage("", id="2", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "call"}]),
            ToolMessage("42", tool_call_id="call", id="3"),
        ],
        "when": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
        "raw": b"\x00\x01",
        "id": uuid.UUID(int=1),
        "price": Decimal("1.5"),
        "point": Point(1, float("nan")),
        "tags": {"b", "a"},
        "pair": (1, 2),
        "send": Send("node", {"k": 1}),
        "other": object,
    }
    rendered = render_value(value)
    json.dumps(rendered, allow_nan=False)  # JSON-safe
    messages = rendered["messages"]
    assert messages[0] == {"type": "human", "content": "hi", "id": "1", "name": "ada"}
    assert messages[1]["tool_calls"][0]["name"] == "f"
    assert messages[2]["tool_call_id"] == "call"
    assert rendered["raw"] == {"$bytes": "AAE="}
    assert rendered["point"] == {"$type": "Point", "x": 1, "y": "nan"}
    assert rendered["tags"] == ["a", "b"]
    assert rendered["send"]["node"] == "node"


def test_diff_of_plain_lists_is_a_multiset_difference() -> None:
    a = _tuple({"items": ["x", "y", "y"], "n": 1, "gone": 0})
    b = _tuple({"items": ["y", "z", "x"], "n": 2, "new": [1]})
    diff = diff_states(a, b)
    assert (diff.added, diff.removed, diff.changed) == (["new"], ["gone"], ["items", "n"])
    items = diff.channels[0]
    assert (items.items_added, items.items_removed) == (["z"], ["y"])
    assert diff.channels[1].to_dict() == {
        "channel": "n", "change": "changed", "before": 1, "after": 2,
    }  # fmt: skip


def test_next_nodes_from_triggers_and_sends() -> None:
    tup = _tuple(
        {"branch:to:a": None, "branch:to:b": None, "__pregel_tasks": [Send("c", 1)]},
        channel_versions={"branch:to:a": "2", "branch:to:b": "3"},
        versions_seen={"a": {"branch:to:a": "2"}},  # a consumed its trigger already
    )
    assert next_nodes(tup) == ["b", "c"]


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def start(self, threads: int) -> None:
        self.events.append(("start", threads))

    def thread_started(self, thread_id: str, checkpoints: int) -> None:
        self.events.append(("thread", thread_id))

    def thread_done(self, report: ThreadReport) -> None:
        self.events.append(("done", report.status))


def test_library_export_import_copy_and_digests() -> None:
    source, target, again = MemoryCheckpointer(), MemoryCheckpointer(), MemoryCheckpointer()
    filled = fill(source)
    stream = io.StringIO()
    exported = export_threads(source, stream, ["chat"], source_name="memory://")
    assert exported.ok
    assert [t.status for t in exported.threads] == ["exported"]

    progress = Recorder()
    report = import_threads(target, io.StringIO(stream.getvalue()), progress=progress)
    assert report.ok
    assert progress.events == [("start", 1), ("thread", "chat"), ("done", "copied")]
    assert snapshot(target, "chat") == snapshot(source, "chat")

    copied = copy_threads(target, again)
    assert copied.ok
    assert copied.to_dict()["checkpoints"] == len(snapshot(source, "chat"))

    # the digest sees a changed write value or order, but not the order of two tasks' writes
    serde = MsgpackSerializer()
    records = read_thread(source, "chat")
    digest = digest_records(records, serde)
    with_writes = next(i for i, r in enumerate(records) if len({w.task_id for w in r.writes}) > 1)
    record = records[with_writes]

    def with_writes_as(writes: list[Any]) -> str:
        edited = [
            *records[:with_writes],
            replace(record, writes=writes),
            *records[with_writes + 1 :],
        ]
        return digest_records(edited, serde).sha256

    assert with_writes_as(list(reversed(record.writes))) != digest.sha256  # order in a task counts
    by_task: dict[str, list[Any]] = {}
    for w in record.writes:
        by_task.setdefault(w.task_id, []).append(w)
    assert with_writes_as([w for t in reversed(list(by_task)) for w in by_task[t]]) == digest.sha256
    changed = replace(record.writes[-1], value="something else")
    assert with_writes_as([*record.writes[:-1], changed]) != digest.sha256

    fork = fork_checkpoint(source, "chat", filled.fork, "branch")
    assert fork.method == "fork_thread"
    assert fork.checkpoints == len(read_thread(source, "branch"))


def test_a_source_changing_during_the_copy_fails_verification_then_resumes() -> None:
    source, target = MemoryCheckpointer(), MemoryCheckpointer()
    fill(source)

    class WriterMeanwhile(Progress):
        """Another process writes the source's thread while it is being copied."""

        done = False

        def advance(self, thread_id: str, checkpoints: int = 1) -> None:
            if not self.done:
                self.done = True
                chat_graph(source).invoke(
                    {"messages": [HumanMessage("meanwhile", id="m1")]},
                    {"configurable": {"thread_id": "chat"}},
                )

    first = copy_threads(source, target, ["chat"], progress=WriterMeanwhile())
    assert not first.ok
    assert "changed during the copy" in (first.threads[0].error or "")
    second = copy_threads(source, target, ["chat"])
    assert [(t.status, t.verified) for t in second.threads] == [("resumed", True)]
    assert snapshot(target, "chat") == snapshot(source, "chat")
