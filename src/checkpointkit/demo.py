"""The demo behind ``make demo``: a LangGraph chat on a checkpointkit checkpointer.

A deterministic fake model (no network, no API key) answers a few turns; the
demo shows conversation memory, an interrupt resumed with ``Command(resume=)``,
the thread's history, a fork from an earlier snapshot into a new thread, and
how little the history costs to store.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from checkpointkit import MemoryCheckpointer


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def fake_model(state: ChatState) -> dict[str, Any]:
    """Answer deterministically, remembering how many user turns came before."""
    said = [m.content for m in state["messages"] if isinstance(m, HumanMessage)]
    reply = f"(turn {len(said)}) you said {said[-1]!r}; earlier: {said[:-1] or 'nothing'}"
    return {"messages": [AIMessage(content=reply)]}


def confirm(state: ChatState) -> dict[str, Any]:
    """Pause for a human when the user asks to forget something."""
    asked = [m for m in state["messages"] if isinstance(m, HumanMessage)][-1]
    if "forget" in str(asked.content):
        answer = interrupt({"question": "Really forget?", "message": asked.content})
        return {"messages": [AIMessage(content=f"human said: {answer}")]}
    return {}


def build(checkpointer: Any) -> Any:
    builder = StateGraph(ChatState)
    builder.add_node("model", fake_model)
    builder.add_node("confirm", confirm)
    builder.add_edge(START, "model")
    builder.add_edge("model", "confirm")
    builder.add_edge("confirm", END)
    return builder.compile(checkpointer=checkpointer)


def main() -> None:
    saver = MemoryCheckpointer()
    graph = build(saver)
    config: dict[str, Any] = {"configurable": {"thread_id": "demo"}}

    print("== conversation memory")
    for text in ("hello", "my name is Ada", "what is my name?"):
        out = graph.invoke({"messages": [HumanMessage(content=text)]}, config)
        print(f"  user: {text}\n  bot:  {out['messages'][-1].content}")

    print("== interrupt and resume")
    out = graph.invoke({"messages": [HumanMessage(content="please forget my name")]}, config)
    print(f"  paused: {out['__interrupt__'][0].value}")
    out = graph.invoke(Command(resume="yes"), config)
    print(f"  resumed: {out['messages'][-1].content}")

    print("== history (newest first)")
    history = list(graph.get_state_history(config))
    for snap in history:
        print(
            f"  step {snap.metadata['step']:>2} {snap.metadata['source']:<6} "
            f"next={snap.next!s:<14} messages={len(snap.values.get('messages', []))}"
        )

    print("== fork from the snapshot after the second turn into thread 'demo-fork'")
    second = next(s for s in reversed(history) if len(s.values.get("messages", [])) == 4)
    fork = saver.fork_thread(second.config, "demo-fork")
    out = graph.invoke({"messages": [HumanMessage(content="my name is Grace")]}, fork)
    print(f"  fork:     {out['messages'][-1].content}")
    main_last = graph.get_state(config).values["messages"][-1].content
    print(f"  original: {main_last}")

    print("== threads")
    for info in saver.list_threads():
        print(f"  {info.thread_id:<10} checkpoints={info.checkpoint_count}")
    print(f"== stored bytes for thread 'demo': {saver.storage_bytes('demo')}")


if __name__ == "__main__":
    main()
