"""The api workload: the saver methods one by one, in microseconds per call.

On one thread with 10 channels (one a list that grows by one ~300-byte item
per step, two small ones changing at each step, seven unchanged), each step
is a ``put``, a ``put_writes`` of 3 writes and a ``get_tuple``, as LangGraph
issues them. checkpointkit's saver and LangGraph's run the same steps
alternately. Then ``list(limit=10)`` and a full ``list()`` over the thread.
Every read is checked against what was put.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint
from langgraph.checkpoint.base.id import uuid6

from benchmarks.report import md_table
from benchmarks.savers import families

CHANNELS = [f"ch{i}" for i in range(10)]


class Stepper:
    """Drives one saver through the workload's steps."""

    def __init__(self, saver: BaseCheckpointSaver[Any], thread_id: str) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.values: dict[str, Any] = {ch: {"n": 0, "name": ch} for ch in CHANNELS}
        self.values["ch0"] = []
        self.versions: dict[str, Any] = {}
        self.head: str | None = None
        self.times: dict[str, list[float]] = {"put": [], "put_writes": [], "get_tuple": []}

    def step(self, i: int) -> None:
        changed = ["ch0", CHANNELS[1 + i % 9], CHANNELS[1 + (i + 4) % 9]]
        self.values["ch0"] = [*self.values["ch0"], {"i": i, "text": "x" * 280}]
        for ch in changed[1:]:
            self.values[ch] = {"n": i, "name": ch}
        new_versions = {}
        for ch in changed if i else CHANNELS:
            self.versions[ch] = self.saver.get_next_version(self.versions.get(ch), None)
            new_versions[ch] = self.versions[ch]
        checkpoint = Checkpoint(
            v=4,
            id=str(uuid6(clock_seq=i)),
            ts=datetime.now(timezone.utc).isoformat(),
            channel_values=dict(self.values),
            channel_versions=dict(self.versions),
            versions_seen={"node": {ch: self.versions[ch] for ch in changed}},
            updated_channels=changed,
        )
        configurable = {"thread_id": self.thread_id, "checkpoint_ns": ""}
        if self.head:
            configurable["checkpoint_id"] = self.head
        start = time.perf_counter()
        stored = self.saver.put(
            {"configurable": configurable}, checkpoint, {"source": "loop", "step": i}, new_versions
        )
        self.times["put"].append(time.perf_counter() - start)
        self.head = stored["configurable"]["checkpoint_id"]
        writes = [(ch, {"w": i}) for ch in changed]
        start = time.perf_counter()
        self.saver.put_writes(stored, writes, f"task-{i}", "~node")
        self.times["put_writes"].append(time.perf_counter() - start)
        start = time.perf_counter()
        tup = self.saver.get_tuple(stored)
        self.times["get_tuple"].append(time.perf_counter() - start)
        if tup is None or len(tup.checkpoint["channel_values"]["ch0"]) != i + 1:
            raise RuntimeError(f"{type(self.saver).__name__}: step {i} read back wrong")
        if len(tup.pending_writes or []) != 3:
            raise RuntimeError(f"{type(self.saver).__name__}: step {i} lost writes")


def _time_list(saver: BaseCheckpointSaver[Any], thread_id: str, limit: int | None) -> float:
    config = {"configurable": {"thread_id": thread_id}}
    start = time.perf_counter()
    got = list(saver.list(config, limit=limit))
    elapsed = time.perf_counter() - start
    if limit is not None and len(got) != limit:
        raise RuntimeError(f"{type(saver).__name__}: list(limit={limit}) gave {len(got)}")
    return elapsed


def run(quick: bool = False) -> dict[str, Any]:
    """Run the api workload on every backend family; print a table; return figures."""
    steps = 100 if quick else 1000
    repeats = 3 if quick else 7
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir, families(workdir) as found:
        figures["checkpointkit"] = _ours_side_by_side(found, steps)
        figures["floors"] = {f.name: f.floors() for f in found if f.floors is not None}
        for family in found:
            if family.official is None:
                continue
            with family.ours() as ours, family.official() as official:
                pair = {
                    "checkpointkit": Stepper(ours, "api"),
                    "langgraph": Stepper(official, "api"),
                }
                for i in range(steps):
                    for stepper in pair.values():
                        stepper.step(i)
                lists: dict[str, dict[str, list[float]]] = {k: {"10": [], "all": []} for k in pair}
                for _ in range(repeats):
                    for name, stepper in pair.items():
                        lists[name]["10"].append(_time_list(stepper.saver, "api", 10))
                        lists[name]["all"].append(_time_list(stepper.saver, "api", None))
                figures[family.name] = {
                    name: {
                        **{op: statistics.median(t) * 1e6 for op, t in stepper.times.items()},
                        **{
                            f"{op}_p95": statistics.quantiles(t, n=20)[-1] * 1e6
                            for op, t in stepper.times.items()
                        },
                        "list10": statistics.median(lists[name]["10"]) * 1e6,
                        "list_all": statistics.median(lists[name]["all"]) * 1e6,
                    }
                    for name, stepper in pair.items()
                }
    _print(figures, steps)
    return figures


def _ours_side_by_side(found: list[Any], steps: int) -> dict[str, dict[str, float]]:
    """Run every checkpointkit saver on the same steps, memory first as the reference."""
    with contextlib.ExitStack() as stack:
        steppers = {f.name: Stepper(stack.enter_context(f.ours()), "api-ours") for f in found}
        for i in range(steps):
            for stepper in steppers.values():
                stepper.step(i)
    return {
        name: {op: statistics.median(t) * 1e6 for op, t in stepper.times.items()}
        for name, stepper in steppers.items()
    }


def _print(figures: dict[str, Any], steps: int) -> None:
    ours = figures.pop("checkpointkit")
    floors = figures.pop("floors")
    print(f"## api: {steps} steps on one thread, 10 channels (µs per call, median)\n")
    print("### checkpointkit's savers side by side (x = time relative to memory)\n")
    memory = ours["memory"]
    rows = [
        [
            name,
            *(
                f"{row[op]:,.0f} ({row[op] / memory[op]:.1f}x)"
                for op in ("put", "put_writes", "get_tuple")
            ),
        ]
        for name, row in ours.items()
    ]
    print(md_table(["backend", "put", "put_writes", "get_tuple"], rows))
    if floors:
        print("\n### the servers' floors: bare client calls, no saver (µs, median)\n")
        rows = [
            [name, what, f"{us:,.0f}"] for name, row in floors.items() for what, us in row.items()
        ]
        print(md_table(["backend", "call", "µs"], rows))
    print("\n### against LangGraph's savers\n")
    figures["checkpointkit"] = ours
    figures["floors"] = floors
    ops = ["put", "put_writes", "get_tuple", "list10", "list_all"]
    rows = []
    for family, pair in figures.items():
        if family in ("checkpointkit", "floors"):
            continue
        for name in ("checkpointkit", "langgraph"):
            rows.append([f"{family} {name}", *(f"{pair[name][op]:,.0f}" for op in ops)])
        rows.append(
            [
                f"{family} speed-up",
                *(f"{pair['langgraph'][op] / pair['checkpointkit'][op]:.1f}x" for op in ops),
            ]
        )
    print(md_table(["saver", "put", "put_writes", "get_tuple", "list(limit=10)", "list()"], rows))
