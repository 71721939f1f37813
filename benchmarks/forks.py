"""The fork/resume workload: time travel and human-in-the-loop, timed and checked.

On a 50-turn chat thread: ``update_state`` on a past checkpoint and a run from
the fork; and a graph that interrupts before answering, resumed with
``invoke(None)``. checkpointkit's saver and LangGraph's run alternately.
Every fork and resume is checked: the fork holds the past messages plus the
new one, the original branch is untouched, the resumed run finishes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver

from benchmarks.chat import build_graph, human
from benchmarks.report import md_table
from benchmarks.savers import families


def _fork_once(graph: Any, snapshots: list[Any], k: int) -> float:
    past = snapshots[len(snapshots) // 2 + k]
    start = time.perf_counter()
    fork = graph.update_state(past.config, {"messages": [HumanMessage(content=f"fork {k}")]})
    out = graph.invoke(None, fork)
    elapsed = time.perf_counter() - start
    expected = len(past.values["messages"]) + 2
    if len(out["messages"]) != expected or out["messages"][-2].content != f"fork {k}":
        raise RuntimeError(f"fork {k}: {len(out['messages'])} messages, expected {expected}")
    return elapsed


def _resume_once(saver: BaseCheckpointSaver[Any], k: int) -> float:
    graph = build_graph(saver).builder.compile(checkpointer=saver, interrupt_before=["model"])
    config = {"configurable": {"thread_id": f"resume-{k}"}}
    graph.invoke(human(k), config)
    start = time.perf_counter()
    out = graph.invoke(None, config)
    elapsed = time.perf_counter() - start
    if len(out["messages"]) != 2:
        raise RuntimeError(f"resume {k}: {len(out['messages'])} messages")
    return elapsed


def run(quick: bool = False) -> dict[str, Any]:
    """Run forks and resumes on every family; print a table; return figures."""
    turns, repeats = (10, 3) if quick else (50, 15)
    figures: dict[str, Any] = {}
    config = {"configurable": {"thread_id": "forks"}}
    with tempfile.TemporaryDirectory() as workdir, families(workdir) as found:
        for family in found:
            if family.official is None:
                continue
            with family.ours() as ours, family.official() as official:
                pair = {"checkpointkit": ours, "langgraph": official}
                graphs = {name: build_graph(saver) for name, saver in pair.items()}
                for turn in range(turns):
                    for graph in graphs.values():
                        graph.invoke(human(turn), config)
                heads = {n: g.get_state(config).config for n, g in graphs.items()}
                # forks start from checkpoints about to call the model
                snaps = {
                    n: [s for s in list(g.get_state_history(config))[::-1] if s.next == ("model",)]
                    for n, g in graphs.items()
                }
                times: dict[str, dict[str, list[float]]] = {
                    n: {"fork": [], "resume": []} for n in pair
                }
                for k in range(repeats):
                    for name in pair:
                        times[name]["fork"].append(_fork_once(graphs[name], snaps[name], k))
                        times[name]["resume"].append(_resume_once(pair[name], k))
                for name, graph in graphs.items():
                    if len(graph.get_state(heads[name]).values["messages"]) != 2 * turns:
                        raise RuntimeError(f"{family.name} {name}: forks changed the original")
                figures[family.name] = {
                    name: {op: statistics.median(t) * 1e3 for op, t in ops.items()}
                    for name, ops in times.items()
                }
    print(
        f"## fork/resume: update_state on a past checkpoint of a {turns}-turn chat + run; "
        "interrupt + invoke(None) (ms, median)\n"
    )
    rows = []
    for family, pair in figures.items():
        for op in ("fork", "resume"):
            ours, theirs = pair["checkpointkit"][op], pair["langgraph"][op]
            rows.append([family, op, f"{ours:.2f}", f"{theirs:.2f}", f"{theirs / ours:.1f}x"])
    print(md_table(["backend", "operation", "checkpointkit", "langgraph", "speed-up"], rows))
    return figures
