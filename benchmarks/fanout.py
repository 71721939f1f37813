"""The fanout workload: many conversations at once through async checkpointers.

50 threads x 20 turns of the chat graph, all threads running concurrently
under one event loop (``ainvoke``), on checkpointkit's async saver and on
LangGraph's, alternately, a few rounds each. Reported: turns per second
(median over rounds) and the ratio. Every thread is checked at the end.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from typing import Any

from benchmarks.chat import build_graph, human
from benchmarks.report import md_table
from benchmarks.savers import AsyncFactory, families


async def _round(factory: AsyncFactory, threads: int, turns: int) -> float:
    async with factory() as saver:
        graph = build_graph(saver)

        async def conversation(k: int) -> None:
            config = {"configurable": {"thread_id": f"fan-{k}"}}
            for turn in range(turns):
                await graph.ainvoke(human(turn), config)

        start = time.perf_counter()
        await asyncio.gather(*(conversation(k) for k in range(threads)))
        elapsed = time.perf_counter() - start
        for k in range(threads):
            state = await graph.aget_state({"configurable": {"thread_id": f"fan-{k}"}})
            if len(state.values["messages"]) != 2 * turns:
                raise RuntimeError(f"thread fan-{k}: {len(state.values['messages'])} messages")
    return threads * turns / elapsed


def run(quick: bool = False) -> dict[str, Any]:
    """Run the fanout workload on every family with an official async saver."""
    threads, turns, rounds = (10, 5, 1) if quick else (50, 20, 3)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir, families(workdir) as found:
        for family in found:
            if family.official_async is None:
                continue
            rates: dict[str, list[float]] = {"checkpointkit": [], "langgraph": []}
            for _ in range(rounds):
                for name, factory in (
                    ("checkpointkit", family.ours_async),
                    ("langgraph", family.official_async),
                ):
                    rates[name].append(asyncio.run(_round(factory, threads, turns)))
            figures[family.name] = {name: statistics.median(r) for name, r in rates.items()}
    print(f"## fanout: {threads} threads x {turns} turns concurrently (async, turns/s)\n")
    rows = [
        [
            family,
            f"{pair['checkpointkit']:,.0f}",
            f"{pair['langgraph']:,.0f}",
            f"{pair['checkpointkit'] / pair['langgraph']:.2f}x",
        ]
        for family, pair in figures.items()
    ]
    print(md_table(["backend", "checkpointkit", "langgraph", "ratio"], rows))
    return figures
