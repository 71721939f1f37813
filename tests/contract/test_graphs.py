"""Real graphs behave exactly as with LangGraph's own `InMemorySaver`.

Each scenario runs twice, once on LangGraph's saver and once on ours (sync or
async), recording what a user sees: values, next nodes, the history. The two
recordings must be equal.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Interrupt, Send, interrupt
from typing_extensions import TypedDict

from tests.contract.conftest import Api


def normal(value: Any) -> Any:
    """Make a state comparable across runs (message ids are random)."""
    if isinstance(value, BaseMessage):
        return (value.type, value.content)
    if isinstance(value, Interrupt):  # its id derives from random checkpoint ids
        return ("interrupt", normal(value.value))
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    return value


class Runner:
    """Runs a compiled graph in the test's mode and records what a user sees."""

    def __init__(self, graph: Any, is_async: bool) -> None:
        self.graph = graph
        self.is_async = is_async
        self.log: list[Any] = []

    async def invoke(self, value: Any, config: dict[str, Any]) -> Any:
        if self.is_async:
            out = await self.graph.ainvoke(value, config)
        else:
            out = self.graph.invoke(value, config)
        self.log.append(("out", normal(out)))
        return out

    async def state(self, config: dict[str, Any]) -> Any:
        if self.is_async:
            snap = await self.graph.aget_state(config, subgraphs=True)
        else:
            snap = self.graph.get_state(config, subgraphs=True)
        self.log.append(("state", normal(snap.values), snap.next, len(snap.tasks)))
        return snap

    async def history(self, config: dict[str, Any]) -> list[Any]:
        if self.is_async:
            snaps = [s async for s in self.graph.aget_state_history(config)]
        else:
            snaps = list(self.graph.get_state_history(config))
        self.log.append(
            (
                "history",
                [
                    (normal(s.values), s.next, s.metadata["source"], s.metadata["step"])
                    for s in snaps
                ],
            )
        )
        return snaps

    async def update(self, config: dict[str, Any], values: Any, as_node: str | None = None) -> Any:
        if self.is_async:
            new = await self.graph.aupdate_state(config, values, as_node=as_node)
        else:
            new = self.graph.update_state(config, values, as_node=as_node)
        return new


Scenario = Callable[[BaseCheckpointSaver[Any], bool], Awaitable[list[Any]]]


async def same_as_langgraph(api: Api, scenario: Scenario) -> list[Any]:
    expected = await scenario(InMemorySaver(), api.is_async)
    actual = await scenario(api.saver, api.is_async)
    assert actual == expected
    assert len(actual) > 2
    return actual


class Chat(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]
    approved: bool


def chat_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def model(state: Chat) -> dict[str, Any]:
        last = state["messages"][-1].content
        return {"messages": [AIMessage(content=f"echo: {last}")]}

    def review(state: Chat) -> dict[str, Any]:
        answer = interrupt({"question": "approve?", "n": len(state["messages"])})
        return {"approved": answer == "yes"}

    builder = StateGraph(Chat)
    builder.add_node("model", model)
    builder.add_node("review", review)
    builder.add_edge(START, "model")
    builder.add_edge("model", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=saver)


async def test_interrupt_resume_history_and_fork(api: Api) -> None:
    async def scenario(saver: BaseCheckpointSaver[Any], is_async: bool) -> list[Any]:
        run = Runner(chat_graph(saver), is_async)
        cfg = {"configurable": {"thread_id": "chat"}}
        for turn in range(3):
            await run.invoke({"messages": [HumanMessage(content=f"hi {turn}")]}, cfg)
            await run.state(cfg)
            await run.invoke(Command(resume="yes" if turn % 2 else "no"), cfg)
            await run.state(cfg)
        snaps = await run.history(cfg)
        # time travel: fork from the checkpoint after the first model reply
        old = next(s for s in reversed(snaps) if s.next == ("review",))
        fork = await run.update(old.config, {"messages": [HumanMessage(content="forked")]})
        await run.invoke(None, fork)
        await run.state(fork)
        await run.invoke(Command(resume="yes"), fork)
        await run.state(cfg)
        await run.history(cfg)
        # removing a message by id
        state = await run.state(cfg)
        first_id = state.values["messages"][0].id
        await run.update(cfg, {"messages": [RemoveMessage(id=first_id)]})
        await run.state(cfg)
        return run.log

    await same_as_langgraph(api, scenario)


class Fan(TypedDict):
    items: Annotated[list[str], operator.add]
    total: int


def fan_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def split(state: Fan) -> dict[str, Any]:
        return {"items": ["start"]}

    def route(state: Fan) -> list[Send]:
        return [Send("work", {"items": [f"job{i}"], "total": i}) for i in range(3)]

    def work(state: Fan) -> dict[str, Any]:
        return {"items": [f"done:{state['items'][0]}"]}

    def left(state: Fan) -> dict[str, Any]:
        return {"items": ["left"]}

    def right(state: Fan) -> dict[str, Any]:
        return {"items": ["right"]}

    def join(state: Fan) -> dict[str, Any]:
        return {"total": len(state["items"])}

    builder = StateGraph(Fan)
    builder.add_node("split", split)
    builder.add_node("work", work)
    builder.add_node("left", left)
    builder.add_node("right", right)
    builder.add_node("join", join)
    builder.add_edge(START, "split")
    builder.add_conditional_edges("split", route, ["work"])
    builder.add_edge("split", "left")
    builder.add_edge("split", "right")
    builder.add_edge(["work", "left", "right"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=saver)


async def test_parallel_branches_and_send(api: Api) -> None:
    async def scenario(saver: BaseCheckpointSaver[Any], is_async: bool) -> list[Any]:
        run = Runner(fan_graph(saver), is_async)
        cfg = {"configurable": {"thread_id": "fan"}}
        out = await run.invoke({"items": [], "total": 0}, cfg)
        run.log.append(sorted(out["items"]))
        await run.state(cfg)
        await run.history(cfg)
        return run.log

    await same_as_langgraph(api, scenario)


class Outer(TypedDict):
    log: Annotated[list[str], operator.add]


def nested_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def inner_ask(state: Outer) -> dict[str, Any]:
        answer = interrupt("inner question")
        return {"log": [f"inner got {answer}"]}

    inner = StateGraph(Outer)
    inner.add_node("ask", inner_ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    outer = StateGraph(Outer)
    outer.add_node("before", lambda s: {"log": ["before"]})
    outer.add_node("sub", inner.compile())
    outer.add_node("after", lambda s: {"log": ["after"]})
    outer.add_edge(START, "before")
    outer.add_edge("before", "sub")
    outer.add_edge("sub", "after")
    outer.add_edge("after", END)
    return outer.compile(checkpointer=saver)


async def test_subgraph_interrupt_in_namespace(api: Api) -> None:
    async def scenario(saver: BaseCheckpointSaver[Any], is_async: bool) -> list[Any]:
        run = Runner(nested_graph(saver), is_async)
        cfg = {"configurable": {"thread_id": "nested"}}
        await run.invoke({"log": ["go"]}, cfg)
        snap = await run.state(cfg)
        run.log.append([normal(t.state.values) if t.state else None for t in snap.tasks])
        await run.invoke(Command(resume="42"), cfg)
        await run.state(cfg)
        await run.history(cfg)
        return run.log

    log = await same_as_langgraph(api, scenario)
    final = [entry[1]["log"] for entry in log if entry[0] == "out"][-1]
    assert final[-2:] == ["inner got 42", "after"]


def extend(state: list[str] | None, writes: Any) -> list[str]:
    out = list(state or [])
    for w in writes:
        out.extend(w)
    return out


class Notes(TypedDict):
    notes: Annotated[list[str], DeltaChannel(extend, snapshot_frequency=3)]


def delta_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def note(state: Notes) -> dict[str, Any]:
        return {"notes": [f"note {len(state['notes'])}"]}

    builder = StateGraph(Notes)
    builder.add_node("note", note)
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    return builder.compile(checkpointer=saver)


async def test_delta_channel_state(api: Api) -> None:
    async def scenario(saver: BaseCheckpointSaver[Any], is_async: bool) -> list[Any]:
        run = Runner(delta_graph(saver), is_async)
        cfg = {"configurable": {"thread_id": "delta"}}
        for i in range(8):
            await run.invoke({"notes": [f"user {i}"]}, cfg)
        await run.state(cfg)
        snaps = await run.history(cfg)
        fork = await run.update(snaps[5].config, {"notes": ["forked"]})
        await run.invoke(None, fork)
        await run.state(cfg)
        return run.log

    log = await same_as_langgraph(api, scenario)
    assert any(entry[0] == "state" and len(entry[1]["notes"]) >= 16 for entry in log)


async def test_delete_for_runs_removes_a_real_graph_run(api: Api) -> None:
    from uuid import uuid4

    graph = fan_graph(api.saver)
    thread = {"configurable": {"thread_id": f"runs-{uuid4().hex[:8]}"}}
    first, second = str(uuid4()), str(uuid4())
    for run_id in (first, second):
        # LangGraph's server passes the run id in the config's metadata
        config = {**thread, "metadata": {"run_id": run_id}}
        if api.is_async:
            await graph.ainvoke({"items": [], "total": 0}, config)
        else:
            graph.invoke({"items": [], "total": 0}, config)
    runs = {t.metadata.get("run_id") for t in await api.list(thread)}
    assert {first, second} <= runs
    await api.delete_for_runs([first])
    left = {t.metadata.get("run_id") for t in await api.list(thread)}
    assert first not in left
    assert second in left
