"""A writer process the crash tests kill with SIGKILL at a random moment.

Run as ``python -m tests.reliability._crash_child '<spec json>' <graph: 0|1>``.
It opens a saver on the spec's store, prints ``ready``, waits for a line on
stdin, then writes as fast as it can until it is killed:

* thread ``raw``: a chain of checkpoints continuing the stored one, each with
  a random blob, its step and a growing list (stored as deltas), each followed
  by two pending writes of one task. After ``put`` returns it prints
  ``P <checkpoint id> <step> <sha256 of the blob>``; after ``put_writes``
  returns, ``W <checkpoint id> <step>``. Each line is printed whole, after the
  call returned, so a printed line is an acknowledged write.
* with graph=1, thread ``graph`` too, from a second OS thread: a LangGraph run
  that counts forever (``invoke(None)`` continues an earlier run), storing every
  step synchronously.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import random
import sys
import threading
from typing import Annotated, Any

from typing_extensions import TypedDict

from tests.contract.helpers import checkpoint, config
from tests.reliability._backends import saver_from_spec

RAW = "raw"
GRAPH = "graph"
NEVER = 10**12


def expected_items(step: int) -> list[str]:
    return [f"item {k}" for k in range(step + 1)]


def blob_of(step: int, size: int) -> bytes:
    """Return a blob whose content depends on the step (so the parent can check it)."""
    return random.Random(step).randbytes(size)


class Counter(TypedDict):
    count: int
    log: Annotated[list[int], operator.add]


def counting_graph(saver: Any, stop_at: int) -> Any:
    """A graph whose one node adds its count to ``log`` until the count reaches `stop_at`."""
    from langgraph.graph import END, START, StateGraph  # only the graph children need it

    def work(state: Counter) -> dict[str, Any]:
        return {"count": state["count"] + 1, "log": [state["count"]]}

    builder = StateGraph(Counter)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_conditional_edges("work", lambda s: END if s["count"] >= stop_at else "work")
    return builder.compile(checkpointer=saver)


def _say(line: str) -> None:
    # One write(2) per line: a kill leaves a line whole or cut, never interleaved.
    os.write(1, (line + "\n").encode())


def hammer(saver: Any) -> None:
    """Extend the chain of thread ``raw`` forever."""
    latest = saver.get_tuple(config(RAW))
    if latest is None:
        step, parent, versions = 0, None, {}
    else:
        step = latest.metadata["step"] + 1
        parent = latest.config["configurable"]["checkpoint_id"]
        versions = dict(latest.checkpoint["channel_versions"])
    while True:
        size = 256 + (step * 7919) % 16384
        blob = blob_of(step, size)
        values = {"blob": blob, "step": step, "items": expected_items(step)}
        for channel in values:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = checkpoint(values, dict(versions))
        digest = hashlib.sha256(blob).hexdigest()
        meta = {"source": "loop", "step": step, "digest": digest, "size": size}
        stored = saver.put(config(RAW, checkpoint_id=parent), cp, meta, dict(versions))
        parent = stored["configurable"]["checkpoint_id"]
        _say(f"P {parent} {step} {digest}")
        saver.put_writes(
            config(RAW, checkpoint_id=parent),
            [("counter", step), ("note", f"note {step}")],
            f"task-{step}",
        )
        _say(f"W {parent} {step}")
        step += 1


def run_graph(saver: Any) -> None:
    graph = counting_graph(saver, NEVER)
    cfg = {"configurable": {"thread_id": GRAPH}, "recursion_limit": NEVER}
    start = None if graph.get_state(cfg).values else {"count": 0, "log": []}
    graph.invoke(start, cfg, durability="sync")


def main() -> None:
    spec = json.loads(sys.argv[1])
    with_graph = sys.argv[2] == "1"
    with saver_from_spec(spec) as saver:
        saver.get_tuple(config(RAW))  # connect and create the schema before "ready"
        if with_graph:
            counting_graph(saver, NEVER)  # import LangGraph before "ready"
        _say("ready")
        sys.stdin.readline()
        if with_graph:
            threading.Thread(target=run_graph, args=(saver,), daemon=True).start()
        hammer(saver)


if __name__ == "__main__":
    main()
