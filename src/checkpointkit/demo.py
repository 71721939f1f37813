"""The demo behind ``make demo``: a LangGraph chat that survives a crash, on SQLite.

A deterministic fake model (no network, no API key) chats on the embedded
SQLite default, a file under ``./demo-data/`` recreated on each run. In order,
the demo shows: conversation memory across turns; an interrupt resumed with
``Command(resume=...)``; a crash — a child process (``python -m
checkpointkit.demo --crash-child DB THREAD``) runs a turn on the same file and
is killed with SIGKILL while a node sleeps — and the parent resuming the turn
from the last checkpoint with ``invoke(None, config)``; the thread's history;
a fork from an earlier checkpoint into a new thread (``fork_thread``) whose
branch then diverges; and the history picture (`checkpointkit.picture`)
written next to the database. It ends with the CLI commands that inspect what
it wrote.

The chat graph (`build_graph`) is also used by the notebooks and the chat
service example: ``model`` answers, then routes to ``fetch`` (a slow "tool")
for ``look up ...`` or to ``confirm`` (an interrupt) before forgetting.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from typing_extensions import NotRequired, TypedDict

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from checkpointkit.errors import MissingDependencyError
from checkpointkit.picture import history_graph, save_picture, short_id

try:
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.message import add_messages
    from langgraph.types import Command, interrupt
except ImportError as exc:  # checkpointkit needs only langgraph-checkpoint; the demo runs graphs
    raise MissingDependencyError(
        "the demo runs a LangGraph graph and needs the 'langgraph' package, which is not "
        "installed. Install it with: pip install langgraph"
    ) from exc

__all__ = ["ChatState", "build_graph", "fake_model", "main"]

DATA_DIR = Path("demo-data")
DB_NAME = "demo.sqlite"
THREAD = "demo"
FORK = "demo-fork"
CHILD_SLEEP = 60.0  # the child is killed long before this runs out
CHILD_DEADLINE = 60.0  # seconds the parent waits for the child to reach the node
_NAME = re.compile(r"\bmy name is (\w+)", re.IGNORECASE)
_LOOK_UP = re.compile(r"^\s*look up (.+?)\s*[.?!]?\s*$", re.IGNORECASE)


class ChatState(TypedDict):
    """The chat's state: the messages, and the user's name once told."""

    messages: Annotated[list[AnyMessage], add_messages]
    name: NotRequired[str | None]


def _last_user_text(state: ChatState) -> str:
    for message in reversed(state["messages"]):
        if isinstance(message, HumanMessage):
            return str(message.content)
    return ""


def fake_model(state: ChatState) -> dict[str, Any]:
    """Answer the last user message deterministically, from the state alone."""
    text = _last_user_text(state)
    name = state.get("name")
    if match := _NAME.search(text):
        return {"messages": [AIMessage(f"Nice to meet you, {match[1]}.")], "name": match[1]}
    if match := _LOOK_UP.match(text):
        reply = f"Let me look up {match[1]!r}."
    elif "what is my name" in text.lower():
        reply = f"Your name is {name}." if name else "I don't know your name."
    elif "forget" in text.lower():
        reply = "Forgetting your name needs your confirmation."
    else:
        turns = sum(isinstance(m, HumanMessage) for m in state["messages"])
        reply = f"Hello! I am a fake model; this is turn {turns} of our conversation."
    return {"messages": [AIMessage(reply)]}


def route(state: ChatState) -> str:
    """Send ``look up ...`` to the tool and ``forget`` to the confirmation."""
    text = _last_user_text(state)
    if _LOOK_UP.match(text):
        return "fetch"
    if "forget" in text.lower():
        return "confirm"
    return END


def fetch(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
    """A slow "tool": sleeps ``configurable.fetch_seconds`` (0 by default), then answers."""
    match = _LOOK_UP.match(_last_user_text(state))
    topic = match[1] if match else "?"
    seconds = float(config.get("configurable", {}).get("fetch_seconds", 0))
    if seconds:
        # The parent of a crash child waits for this line before killing it.
        print(f"fetch node sleeping {seconds:g} s in process {os.getpid()}", flush=True)
        time.sleep(seconds)
    return {"messages": [AIMessage(f"Found 3 notes on {topic!r}.")]}


def confirm(state: ChatState) -> dict[str, Any]:
    """Pause for a human before forgetting the user's name."""
    answer = interrupt({"question": "Really forget your name?"})
    if str(answer).strip().lower() in ("y", "yes"):
        return {"messages": [AIMessage("OK, I forgot your name.")], "name": None}
    return {"messages": [AIMessage("Fine, I still know your name.")]}


def build_graph(checkpointer: Any) -> Any:
    """Compile the chat graph on `checkpointer` (any LangGraph saver).

    ``START -> model -> (fetch | confirm | END)``, ``fetch -> END``,
    ``confirm -> END``.
    """
    builder = StateGraph(ChatState)
    builder.add_node("model", fake_model)
    builder.add_node("fetch", fetch)
    builder.add_node("confirm", confirm)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["fetch", "confirm", END])
    builder.add_edge("fetch", END)
    builder.add_edge("confirm", END)
    return builder.compile(checkpointer=checkpointer)


# -- the demo -------------------------------------------------------------------------


def _config(thread_id: str, **extra: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **extra}}


def _say(graph: Any, config: RunnableConfig, text: str, who: str = "") -> str:
    out = graph.invoke({"messages": [HumanMessage(text)]}, config)
    reply = str(out["messages"][-1].content)
    print(f"  {who}you: {text}\n  {who}bot: {reply}")
    return reply


def _memory(graph: Any) -> None:
    print(f"== 1. conversation memory (thread {THREAD!r})")
    config = _config(THREAD)
    for text in ("hello", "my name is Ada", "what is my name?"):
        _say(graph, config, text)


def _interrupt(graph: Any) -> None:
    print("== 2. interrupt and resume")
    config = _config(THREAD)
    out = graph.invoke({"messages": [HumanMessage("please forget my name")]}, config)
    print("  you: please forget my name")
    paused = graph.get_state(config)
    print(f"  paused: {out['__interrupt__'][0].value['question']} (next={paused.next})")
    out = graph.invoke(Command(resume="yes"), config)
    print(f'  resumed with Command(resume="yes"): {out["messages"][-1].content}')
    _say(graph, config, "what is my name?")


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _wait_for_sleep(child: subprocess.Popen[str]) -> str:
    """Return the child's "sleeping" line; exit with its output if it never comes."""
    # A reader thread rather than select(): pipes cannot be polled on Windows.
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + CHILD_DEADLINE
    output: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:  # the child exited, or is stuck
            raise SystemExit(
                "demo: the crash child never reached the fetch node; its output:\n"
                + "\n".join(output)
            )
        output.append(line)
        if "fetch node sleeping" in line:
            return line


def _kill(child: subprocess.Popen[str]) -> str:
    """Kill the child abruptly, as a crash would; return how."""
    if hasattr(signal, "SIGKILL"):
        os.kill(child.pid, signal.SIGKILL)
        return "SIGKILL"
    child.kill()  # Windows: TerminateProcess, as abrupt
    return "TerminateProcess"


def _crash(graph: Any, db: Path) -> None:
    print("== 3. crash mid-run, then resume from the last checkpoint")
    config = _config(THREAD)
    before = len(graph.get_state(config).values["messages"])
    cmd = [sys.executable, "-m", "checkpointkit.demo", "--crash-child", str(db), THREAD]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as child:
        try:
            print(f"  child process {child.pid}: you: look up LangGraph checkpointers")
            print(f"  child process {child.pid}: {_wait_for_sleep(child)}")
            how = _kill(child)
            code = child.wait()
        finally:  # never leave the child sleeping behind us
            if child.poll() is None:
                child.kill()
    print(f"  killed child process {child.pid} with {how} (exit code {code})")
    state = graph.get_state(config)
    kept = len(state.values["messages"]) - before
    print(
        f"  last checkpoint: step {state.metadata['step']}, next={state.next}; "
        f"{kept} messages of the interrupted turn were saved"
    )
    out = graph.invoke(None, config)
    print(f"  resumed with invoke(None, config): bot: {out['messages'][-1].content}")


def _history(graph: Any) -> list[Any]:
    history = list(graph.get_state_history(_config(THREAD)))
    print(f"== 4. history of thread {THREAD!r}: {len(history)} checkpoints, newest first")
    print("  id        step source  next        messages  last message")
    for snap in history:
        messages = snap.values.get("messages", [])
        last = str(messages[-1].content) if messages else ""
        last = last if len(last) <= 36 else last[:33] + "..."
        nxt = ",".join(snap.next) or "-"
        print(
            f"  {short_id(snap.config['configurable']['checkpoint_id'])}"
            f"  {snap.metadata['step']:>3} {snap.metadata['source']:<7} {nxt:<11} "
            f"{len(messages):>8}  {last}"
        )
    return history


def _fork(graph: Any, saver: Any, history: list[Any]) -> str:
    # The checkpoint that ended the turn in which the user gave their name.
    point = next(
        s for s in reversed(history)
        if not s.next and str(s.values["messages"][-1].content).startswith("Nice to meet")
    )  # fmt: skip
    point_id = point.config["configurable"]["checkpoint_id"]
    print(
        f"== 5. fork checkpoint {short_id(point_id)} (step {point.metadata['step']}) into {FORK!r}"
    )
    saver.fork_thread(point.config, FORK)
    copied = len(list(graph.get_state_history(_config(FORK))))
    print(f"  fork_thread copied {copied} checkpoints: the fork keeps its history")
    _say(graph, _config(FORK), "what is my name?", who=f"[{FORK}] ")
    _say(graph, _config(THREAD), "what is my name?", who=f"[{THREAD}] ")
    return str(point_id)


def _picture(saver: Any, data: Path) -> None:
    history = history_graph(saver, THREAD)
    print(
        f"== 6. history picture: {len(history.nodes)} checkpoints on "
        f"{len(history.lanes)} branches ({', '.join(history.lanes)})"
    )
    written = [save_picture(history, data / "history.mmd")]
    try:
        written += [save_picture(history, data / f"history.{ext}") for ext in ("svg", "png")]
    except ImportError as exc:  # matplotlib is optional; the Mermaid text is not
        print(f"  (no SVG/PNG: {exc})")
    for path in written:
        print(f"  wrote {path.as_posix()}")


def _threads(saver: Any) -> None:
    print("== 7. threads in the file")
    for info in saver.list_threads():
        print(
            f"  {info.thread_id:<10} {info.checkpoint_count:>3} checkpoints, "
            f"{saver.storage_bytes(info.thread_id):>6} bytes stored"
        )


def _commands(url: str, saver: Any, fork_point: str) -> None:
    latest = saver.get_tuple(_config(THREAD)).config["configurable"]["checkpoint_id"]
    print("== inspect what the demo wrote")
    for command in (
        f"checkpointkit threads {url}",
        f"checkpointkit history {url} {THREAD}",
        f"checkpointkit show {url} {THREAD}",
        f"checkpointkit diff {url} {THREAD} {fork_point} {latest}",
        f"checkpointkit history {url} {FORK}",
        f"checkpointkit fork {url} {THREAD} {fork_point} demo-fork-2",
        f"checkpointkit export {url} {THREAD} -o {DATA_DIR.as_posix()}/demo.jsonl",
    ):
        print(f"  {command}")


def main() -> None:
    """Run the demo in the current directory (it writes ``./demo-data/``)."""
    started = time.monotonic()
    data = DATA_DIR
    shutil.rmtree(data, ignore_errors=True)  # a fresh database on every run
    data.mkdir(parents=True)
    db = data / DB_NAME
    url = f"sqlite:///{db.as_posix()}"
    print(f"checkpointkit demo: a LangGraph chat with a fake model, stored in {db.as_posix()}\n")
    with SQLiteCheckpointer.from_conn_string(str(db)) as saver:
        graph = build_graph(saver)
        _memory(graph)
        _interrupt(graph)
        _crash(graph, db)
        history = _history(graph)
        fork_point = _fork(graph, saver, history)
        _picture(saver, data)
        _threads(saver)
        _commands(url, saver, fork_point)
    print(f"\ndone in {time.monotonic() - started:.1f} s")


def _crash_child(db: str, thread_id: str) -> None:
    """Run a ``look up`` turn whose fetch node sleeps until this process is killed."""
    with SQLiteCheckpointer.from_conn_string(db) as saver:
        graph = build_graph(saver)
        # durability="sync": each checkpoint is written before the next node
        # starts, so the one before `fetch` is on disk when the parent kills us.
        graph.invoke(
            {"messages": [HumanMessage("look up LangGraph checkpointers")]},
            _config(thread_id, fetch_seconds=CHILD_SLEEP),
            durability="sync",
        )
    raise SystemExit("demo: the crash child was not killed")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m checkpointkit.demo", description=__doc__)
    parser.add_argument(
        "--crash-child",
        nargs=2,
        metavar=("DB", "THREAD"),
        help="internal: run the turn that the demo kills mid-run",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse(None)
    if args.crash_child:
        _crash_child(*args.crash_child)
    else:
        main()
