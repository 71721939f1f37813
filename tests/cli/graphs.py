"""Real LangGraph graphs that fill a checkpointer with the data the CLI tests read.

``fill`` runs, on any saver:

* thread ``chat`` (metadata ``user=ada``): messages, an interrupt resumed,
  a second turn left interrupted, and an ``update_state`` fork from an
  earlier checkpoint that then runs into the interrupt again;
* thread ``nested`` (metadata ``user=bob``): a subgraph that interrupts, so
  checkpoints live in a child namespace too, resumed to the end.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class Chat(TypedDict):
    messages: Annotated[list[BaseMessage], add_messages]
    approved: bool


def chat_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def model(state: Chat) -> dict[str, Any]:
        last = state["messages"][-1]
        reply = AIMessage(content=f"echo: {last.content}", id=f"ai-{last.id}")
        return {"messages": [reply]}

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


class Outer(TypedDict):
    log: Annotated[list[str], operator.add]


def nested_graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def ask(state: Outer) -> dict[str, Any]:
        return {"log": [f"inner got {interrupt('inner question')}"]}

    inner = StateGraph(Outer)
    inner.add_node("ask", ask)
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


@dataclass(frozen=True)
class Filled:
    """What `fill` wrote: thread ids and the chat thread's notable checkpoint ids."""

    threads: tuple[str, ...]
    first_reply: str  # chat: after the first model reply, waiting for review
    latest: str  # chat: its newest checkpoint (the fork branch, resumed to the end)
    fork: str  # chat: the update_state checkpoint (an interrupt pending)


def fill(saver: BaseCheckpointSaver[Any], *, chat: str = "chat", nested: str = "nested") -> Filled:
    """Run the graphs on `saver` (see the module docstring)."""
    graph = chat_graph(saver)
    cfg: Any = {"configurable": {"thread_id": chat}, "metadata": {"user": "ada"}}
    graph.invoke({"messages": [HumanMessage(content="hi", id="h1")]}, cfg)
    graph.invoke(Command(resume="yes"), cfg)
    graph.invoke({"messages": [HumanMessage(content="again", id="h2")]}, cfg)
    history = list(graph.get_state_history(cfg))
    first = next(s for s in reversed(history) if s.next == ("review",))
    fork = graph.update_state(
        {**first.config, "metadata": {"user": "ada"}},
        {"messages": [HumanMessage("forked", id="f1")]},
    )
    graph.invoke(None, fork)  # runs into the interrupt again: its writes pend on `fork`
    graph.invoke(Command(resume="no"), cfg)
    latest = graph.get_state(cfg)

    outer = nested_graph(saver)
    ncfg: Any = {"configurable": {"thread_id": nested}, "metadata": {"user": "bob"}}
    outer.invoke({"log": ["go"]}, ncfg)
    outer.invoke(Command(resume="42"), ncfg)
    return Filled(
        threads=(chat, nested),
        first_reply=first.config["configurable"]["checkpoint_id"],
        latest=latest.config["configurable"]["checkpoint_id"],
        fork=fork["configurable"]["checkpoint_id"],
    )


def snapshot(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[tuple[Any, ...]]:
    """Every checkpoint tuple of a thread, all namespaces, as comparable data.

    Sorted by (namespace, id); configs reduced to their ids so savers that
    add other keys still compare.
    """
    out = []
    for t in saver.list({"configurable": {"thread_id": thread_id}}):
        conf = t.config["configurable"]
        parent = (t.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        out.append(
            (
                conf.get("checkpoint_ns", ""),
                conf["checkpoint_id"],
                parent,
                dict(t.metadata),
                t.checkpoint,
                list(t.pending_writes or []),
            )
        )
    out.sort(key=lambda row: (row[0], row[1]))
    return out
