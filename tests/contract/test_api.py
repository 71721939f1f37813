"""The checkpointer contract, method by method, in sync and async mode.

Beyond LangGraph's conformance suite: exact values read back, write ordering
and precedence, list deltas (appends, removals, replacements, forks), the
extras (`list_threads`, `fork_thread`) and typed errors on bad input.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import ERROR, INTERRUPT

from checkpointkit.errors import (
    CheckpointKitError,
    ConfigurationError,
    InvalidFilterError,
    MissingThreadIdError,
    UnknownStrategyError,
)
from tests.contract.conftest import Api
from tests.contract.helpers import checkpoint, config, new_thread

UNSET = object()


class Chain:
    """Puts successive checkpoints of one thread the way LangGraph does."""

    def __init__(self, api: Api, thread_id: str, ns: str = "") -> None:
        self.api = api
        self.thread_id = thread_id
        self.ns = ns
        self.versions: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.head: str | None = None
        self.history: list[tuple[str, dict[str, Any]]] = []

    async def step(
        self, metadata: dict[str, Any] | None = None, parent: str | None = None, **changes: Any
    ) -> str:
        parent = self.head if parent is None else parent
        if parent is not None and parent != self.head:
            # branch: start from the values and versions stored at `parent`
            tup = await self.api.get_tuple(config(self.thread_id, self.ns, parent))
            assert tup is not None
            self.values = dict(tup.checkpoint["channel_values"])
            self.versions = dict(tup.checkpoint["channel_versions"])
        new_versions = {}
        for channel, value in changes.items():
            self.versions[channel] = self.api.saver.get_next_version(
                self.versions.get(channel), None
            )
            new_versions[channel] = self.versions[channel]
            if value is UNSET:  # a new version without a value, as DeltaChannel stores
                self.values.pop(channel, None)
            else:
                self.values[channel] = value
        cp = checkpoint(dict(self.values), dict(self.versions))
        md = {"source": "loop", "step": len(self.history), "parents": {}, **(metadata or {})}
        stored = await self.api.put(config(self.thread_id, self.ns, parent), cp, md, new_versions)
        self.head = stored["configurable"]["checkpoint_id"]
        # deep copy: what was put, even if a test later edits an object in place
        self.history.append((self.head, copy.deepcopy(self.values)))
        return self.head

    async def check_all(self) -> None:
        for checkpoint_id, values in self.history:
            tup = await self.api.get_tuple(config(self.thread_id, self.ns, checkpoint_id))
            assert tup is not None, checkpoint_id
            assert tup.checkpoint["channel_values"] == values


def msg(i: int, kind: type = HumanMessage) -> Any:
    return kind(content=f"message {i} " + "x" * 50, id=f"m{i}")


async def test_put_and_get_round_trip_values_metadata_parent(api: Api) -> None:
    chain = Chain(api, new_thread())
    first = await chain.step({"score": 1}, a="α\x00β", b={"k": [1, 2.5, None]})
    second = await chain.step({"score": 2}, b={"k": []})
    tup = await api.get_tuple(config(chain.thread_id))
    assert tup is not None
    assert tup.config["configurable"]["checkpoint_id"] == second
    assert tup.parent_config is not None
    assert tup.parent_config["configurable"]["checkpoint_id"] == first
    assert tup.checkpoint["channel_values"] == {"a": "α\x00β", "b": {"k": []}}
    assert tup.metadata["score"] == 2
    await chain.check_all()


async def test_get_tuple_unknown_returns_none(api: Api) -> None:
    assert await api.get_tuple(config(new_thread())) is None
    chain = Chain(api, new_thread())
    await chain.step(a=1)
    assert await api.get_tuple(config(chain.thread_id, checkpoint_id="nope")) is None


async def test_list_newest_first_with_filter_before_limit(api: Api) -> None:
    chain = Chain(api, new_thread())
    ids = [await chain.step({"source": "loop", "kind": i % 2}, a=i) for i in range(6)]
    listed = [
        t.config["configurable"]["checkpoint_id"] for t in await api.list(config(chain.thread_id))
    ]
    assert listed == ids[::-1]
    odd = await api.list(config(chain.thread_id), filter={"kind": 1})
    assert [t.checkpoint["channel_values"]["a"] for t in odd] == [5, 3, 1]
    before = await api.list(
        config(chain.thread_id), before=config(chain.thread_id, checkpoint_id=ids[3]), limit=2
    )
    assert [t.config["configurable"]["checkpoint_id"] for t in before] == [ids[2], ids[1]]


async def test_list_filter_key_injection_matches_nothing(api: Api) -> None:
    chain = Chain(api, new_thread())
    await chain.step({"user": "u1"}, a=1)
    assert await api.list(config(chain.thread_id), filter={"x') OR 1=1 --": "u1"}) == []
    assert await api.list(config(chain.thread_id), filter={"user": "u1' OR '1'='1"}) == []
    assert len(await api.list(config(chain.thread_id), filter={"user": "u1"})) == 1


async def test_writes_order_and_precedence(api: Api) -> None:
    chain = Chain(api, new_thread())
    head = config(chain.thread_id, checkpoint_id=await chain.step(a=1))
    await api.put_writes(head, [("c", "b1"), ("d", "b2")], "task-b", task_path="~b")
    await api.put_writes(head, [("c", "a1")], "task-a", task_path="~a")
    await api.put_writes(head, [("c", "ignored")], "task-a", task_path="~a")  # first wins
    await api.put_writes(head, [(ERROR, "first error")], "task-b", task_path="~b")
    await api.put_writes(head, [(ERROR, "second error")], "task-b", task_path="~b")  # last wins
    await api.put_writes(head, [(INTERRUPT, {"value": "ask"})], "task-a", task_path="~a")
    tup = await api.get_tuple(head)
    assert tup is not None
    assert tup.pending_writes == [
        ("task-a", INTERRUPT, {"value": "ask"}),
        ("task-a", "c", "a1"),
        ("task-b", ERROR, "second error"),
        ("task-b", "c", "b1"),
        ("task-b", "d", "b2"),
    ]


async def test_list_deltas_read_back_every_version(api: Api) -> None:
    chain = Chain(api, new_thread())
    messages: list[Any] = []
    for i in range(30):
        messages = [*messages, msg(i, HumanMessage if i % 2 else AIMessage)]
        await chain.step(messages=messages, counter=i)
    # remove one in the middle, replace one by id, reorder the tail
    messages = [m for m in messages if m.id != "m7"]
    await chain.step(messages=messages)
    messages = [*messages[:3], AIMessage(content="edited", id="m3"), *messages[4:]]
    await chain.step(messages=messages)
    messages = [*messages[:-2], messages[-1], messages[-2]]
    await chain.step(messages=messages)
    # an object a node edits in place and returns (so it is written) is stored anew
    messages = list(messages)
    messages[0].content = "changed in place"
    head = config(chain.thread_id, checkpoint_id=chain.head)
    await api.put_writes(head, [("messages", [messages[0]])], "editor", "~editor")
    await chain.step(messages=messages)
    await chain.check_all()


async def test_list_fork_from_old_version_reads_back(api: Api) -> None:
    chain = Chain(api, new_thread())
    ids = []
    messages: list[Any] = []
    for i in range(10):
        messages = [*messages, msg(i)]
        ids.append(await chain.step(messages=messages))
    # update_state-style fork from checkpoint 4, then keep running on the fork
    fork_head = await chain.step(parent=ids[4], messages=[*chain_values(chain, 4), msg(100)])
    await chain.step(messages=[*chain.values["messages"], msg(101)])
    await chain.check_all()
    tup = await api.get_tuple(config(chain.thread_id, checkpoint_id=fork_head))
    assert tup is not None
    assert [m.id for m in tup.checkpoint["channel_values"]["messages"]] == [
        "m0", "m1", "m2", "m3", "m4", "m100",
    ]  # fmt: skip


def chain_values(chain: Chain, index: int) -> list[Any]:
    return list(chain.history[index][1]["messages"])


async def test_delete_thread_and_runs(api: Api) -> None:
    chain = Chain(api, new_thread())
    other = Chain(api, new_thread())
    await chain.step({"run_id": "r1"}, messages=[msg(1)])
    await chain.step({"run_id": "r2"}, messages=[msg(1), msg(2)])
    await other.step({"run_id": "r1"}, a=1)
    await api.delete_for_runs(["r1"])
    left = await api.list(config(chain.thread_id))
    assert [t.metadata["run_id"] for t in left] == ["r2"]
    assert left[0].checkpoint["channel_values"]["messages"] == [msg(1), msg(2)]
    assert await api.list(config(other.thread_id)) == []
    await api.delete_thread(chain.thread_id)
    assert await api.get_tuple(config(chain.thread_id)) is None


async def test_prune_in_the_middle_of_a_delta_chain(api: Api) -> None:
    chain = Chain(api, new_thread())
    messages: list[Any] = []
    for i in range(12):
        messages = [*messages, msg(i)]
        await chain.step(messages=messages)
    await api.prune([chain.thread_id])
    left = await api.list(config(chain.thread_id))
    assert len(left) == 1
    assert left[0].checkpoint["channel_values"]["messages"] == messages
    # the thread goes on from the pruned head
    messages = [*messages, msg(99)]
    await chain.step(messages=messages)
    tup = await api.get_tuple(config(chain.thread_id))
    assert tup is not None
    assert tup.checkpoint["channel_values"]["messages"] == messages


async def test_copy_and_fork_thread_keep_history(api: Api) -> None:
    chain = Chain(api, new_thread())
    ids = []
    messages: list[Any] = []
    for i in range(6):
        messages = [*messages, msg(i)]
        ids.append(await chain.step(messages=messages))
    copy_id = new_thread()
    await api.copy_thread(chain.thread_id, copy_id)
    copied = await api.list(config(copy_id))
    assert [t.checkpoint["channel_values"] for t in copied] == [v for _, v in chain.history[::-1]]

    fork_id = new_thread()
    forked = await api.fork_thread(config(chain.thread_id, checkpoint_id=ids[3]), fork_id)
    assert forked["configurable"] == {
        "thread_id": fork_id,
        "checkpoint_ns": "",
        "checkpoint_id": ids[3],
    }
    history = await api.list(config(fork_id))
    assert [t.config["configurable"]["checkpoint_id"] for t in history] == ids[3::-1]
    assert history[0].checkpoint["channel_values"]["messages"] == chain_values(chain, 3)
    with pytest.raises(ConfigurationError):
        await api.fork_thread(config(chain.thread_id, checkpoint_id=ids[3]), fork_id)


async def test_list_threads(api: Api) -> None:
    first, second = Chain(api, new_thread()), Chain(api, new_thread())
    await first.step({"user": "ann"}, a=1)
    await first.step({"user": "ann"}, a=2)
    await second.step({"user": "bob"}, a=1)
    threads = await api.list_threads()
    by_id = {t.thread_id: t for t in threads}
    assert [t.thread_id for t in threads[:2]] == [second.thread_id, first.thread_id]
    assert by_id[first.thread_id].checkpoint_count == 2
    assert by_id[first.thread_id].metadata["user"] == "ann"
    assert by_id[first.thread_id].created_at <= by_id[first.thread_id].updated_at
    assert [t.thread_id for t in await api.list_threads(filter={"user": "bob"})] == [
        second.thread_id
    ]
    assert len(await api.list_threads(limit=1)) == 1


async def test_delta_channel_history_from_rows(api: Api) -> None:
    chain = Chain(api, new_thread())
    root = await chain.step(items=["seed"])
    await api.put_writes(config(chain.thread_id, checkpoint_id=root), [("items", "w1")], "t1", "~1")
    mid = await chain.step(items=UNSET)
    await api.put_writes(config(chain.thread_id, checkpoint_id=mid), [("items", "w2")], "t2", "~2")
    await api.put_writes(config(chain.thread_id, checkpoint_id=mid), [("other", "x")], "t3", "~3")
    target = await chain.step(items=UNSET)
    await api.put_writes(config(chain.thread_id, checkpoint_id=target), [("items", "w3")], "t4")
    history = await api.delta_history(
        config(chain.thread_id, checkpoint_id=target), ["items", "none"]
    )
    assert history["items"]["seed"] == ["seed"]
    assert [w[2] for w in history["items"]["writes"]] == ["w1", "w2"]
    assert history["none"] == {"writes": []}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"configurable": {}},
        {"configurable": {"thread_id": ""}},
        {"configurable": {"thread_id": None}},
    ],
)
async def test_missing_thread_id_is_a_typed_error(api: Api, bad: Any) -> None:
    with pytest.raises(MissingThreadIdError, match="thread_id"):
        await api.get_tuple(bad)
    with pytest.raises(MissingThreadIdError):
        await api.put(bad, checkpoint({}, {}), {}, {})


async def test_bad_input_is_typed_and_loses_nothing(api: Api) -> None:
    chain = Chain(api, new_thread())
    await chain.step(a=1)
    with pytest.raises(InvalidFilterError):
        await api.list(config(chain.thread_id), filter={1: "x"})
    with pytest.raises(InvalidFilterError):
        await api.list(config(chain.thread_id), filter={"k": object()})
    with pytest.raises(UnknownStrategyError, match="keep_latest"):
        await api.prune([chain.thread_id], strategy="everything")
    with pytest.raises(ConfigurationError):
        await api.put_writes(config(chain.thread_id), [("c", 1)], "task")
    head = config(chain.thread_id, checkpoint_id=chain.head)
    for bad_writes, task in (([(["c"], 1)], "task"), ([(None, 1)], "task"), ([("c", 1)], None)):
        with pytest.raises(ConfigurationError):
            await api.put_writes(head, bad_writes, task)
    with pytest.raises(CheckpointKitError):
        await api.get_tuple({"configurable": {"thread_id": chain.thread_id, "checkpoint_ns": 5}})
    await chain.check_all()
