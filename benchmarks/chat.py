"""The chat workload: one thread, many turns, through a real LangGraph graph.

Each turn sends a ~200-character human message through ``START -> model ->
tools -> END`` (a fake model answering ~500 characters, ``add_messages``, four
checkpoints per turn). Messages are word-like text (words drawn from a fixed
vocabulary with a fixed seed), which compresses about as much as real model
output does; a second, smaller run on PostgreSQL repeats one letter instead,
text that pglz shrinks far more than any conversation, to show what the
server's own compression does to LangGraph's whole-list rows. Every saver
gets the same turns, interleaved turn by turn so machine noise hits them
alike. Measured: per-turn latency (wall and process CPU time) over the first
and last turns, bytes stored at each quarter, and the time of ``get_state``
and of the full ``get_state_history`` at the end. LangGraph's official savers
also run the graph with ``messages`` declared as a ``DeltaChannel``, their
best storage figure. Every run is verified (message count, history length)
so nothing looks fast by losing data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from benchmarks.report import md_table
from benchmarks.savers import families
from checkpointkit import MemoryCheckpointer


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _fold_messages(state: list[AnyMessage] | None, writes: list[Any]) -> list[AnyMessage]:
    return functools.reduce(add_messages, writes, state or [])  # type: ignore[arg-type]


class DeltaChatState(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(_fold_messages)]


_VOCABULARY = (
    "the of and to in is that it for on was with as at by this from be are or have not "
    "but an they which one you were all we can her has there been if more when will would "
    "who so no state graph node message checkpoint thread model tool call result answer "
    "question user agent memory history value channel step run task write read list data "
    "server worker request response error retry time first last next before after because "
    "while where should could might must about into over under between through during "
    "without again further then once here why how both each few most other some such only "
    "own same than too very just now search document summary report plan update review "
    "customer order payment account price product service issue ticket support team week"
)
_WORDS = _VOCABULARY.split()


def prose(seed: int, length: int) -> str:
    """Word-like text of `length` characters, the same for the same seed."""
    rng = random.Random(seed)
    words: list[str] = []
    size = -1
    while size < length:
        words.append(rng.choice(_WORDS))
        size += len(words[-1]) + 1
    return " ".join(words)[:length]


def _text(kind: str, seed: int, length: int, letter: str) -> str:
    return prose(seed, length) if kind == "prose" else letter * length


def build_graph(
    saver: BaseCheckpointSaver[Any], *, delta: bool = False, text: str = "prose"
) -> Any:
    """Compile the benchmark chat graph on `saver`; `text` is "prose" or "letter"."""

    def model(state: dict[str, Any]) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=f"reply {n} " + _text(text, n, 490, "a"))]}

    def tools(state: dict[str, Any]) -> dict[str, Any]:
        return {}

    builder = StateGraph(DeltaChatState if delta else ChatState)
    builder.add_node("model", model)
    builder.add_node("tools", tools)
    builder.add_edge(START, "model")
    builder.add_edge("model", "tools")
    builder.add_edge("tools", END)
    return builder.compile(checkpointer=saver)


def human(turn: int, text: str = "prose") -> dict[str, Any]:
    content = f"question {turn} " + _text(text, -turn, 188, "h")
    return {"messages": [HumanMessage(content=content)]}


# -- savers and how to measure what they store ------------------------------------


def _official_memory_bytes(saver: InMemorySaver, thread_id: str) -> int:
    total = 0
    for by_id in saver.storage.get(thread_id, {}).values():
        for cp, md, _parent in by_id.values():
            total += len(cp[1]) + len(md[1])
    for key, writes in saver.writes.items():
        if key[0] == thread_id:
            total += sum(len(w[2][1]) for w in writes.values())
    total += sum(len(v[1]) for k, v in saver.blobs.items() if k[0] == thread_id)
    return total


def _sqlite_file_bytes(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


@dataclass
class Contender:
    """One saver under test and how to read its storage size."""

    name: str
    saver: BaseCheckpointSaver[Any]
    stored_bytes: Callable[[], int]
    delta: bool = False
    graph: Any = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    sizes: dict[int, int] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


def _stored_bytes(saver: BaseCheckpointSaver[Any], thread: str) -> Callable[[], int]:
    """How to read what `saver` stores for `thread`, as its users would measure it.

    Files and databases are measured on disk (SQLite file with its WAL after a
    checkpoint; PostgreSQL tables with indexes and TOAST); Redis by ``MEMORY
    USAGE`` of the thread's keys; the memory savers by their serialized bytes.
    """
    if isinstance(saver, MemoryCheckpointer):
        return lambda: saver.storage_bytes(thread)
    if isinstance(saver, InMemorySaver):
        return functools.partial(_official_memory_bytes, saver, thread)
    if hasattr(saver, "memory_usage"):  # checkpointkit's Redis
        return lambda: int(saver.memory_usage(thread))
    pool = getattr(saver, "_pool", None)
    if hasattr(saver, "disk_bytes") and pool is not None:  # checkpointkit's Postgres

        def ours_pg_bytes() -> int:
            with pool.connection() as conn:  # the same measure as LangGraph's below
                return _pg_table_bytes(conn)

        return ours_pg_bytes
    if hasattr(saver, "disk_bytes"):  # checkpointkit's Postgres on a single connection
        return lambda: int(saver.disk_bytes())
    if hasattr(saver, "path"):  # checkpointkit's SQLite
        return functools.partial(_sqlite_file_bytes, str(saver.path))
    conn = getattr(saver, "conn", None)
    if isinstance(conn, sqlite3.Connection):  # LangGraph's SqliteSaver
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        return functools.partial(_sqlite_file_bytes, path)
    if conn is not None:  # LangGraph's PostgresSaver: its tables, indexes and TOAST
        return functools.partial(_pg_table_bytes, conn)
    raise TypeError(f"no storage measure for {type(saver).__name__}")


def _pg_table_bytes(conn: Any) -> int:
    """Bytes on disk of the tables in the connection's database, as for either saver.

    Each saver has a database of its own, so these are exactly its tables:
    ``pg_total_relation_size`` counts the heap, indexes, TOAST and the
    free-space and visibility maps (dead rows included, as on disk).
    """
    row = conn.execute(
        "SELECT sum(pg_total_relation_size(c.oid)) AS n FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%'"
    ).fetchone()
    value = row["n"] if isinstance(row, dict) else row[0]
    return int(value or 0)


@contextlib.contextmanager
def contenders(workdir: str, only: str | None = None) -> Iterator[list[Contender]]:
    """Yield every saver available here (or of backend `only`), checkpointkit's and
    LangGraph's (with DeltaChannel)."""
    thread = "chat"
    with contextlib.ExitStack() as stack, families(workdir) as found_families:
        found: list[Contender] = []
        for family in found_families:
            if only is not None and family.name != only:
                continue
            ours = stack.enter_context(family.ours())
            found.append(
                Contender(f"checkpointkit {family.name}", ours, _stored_bytes(ours, thread))
            )
            if family.official is None:
                continue
            for delta in (False, True):
                official = stack.enter_context(family.official())
                name = f"langgraph {type(official).__name__}" + (" +DeltaChannel" if delta else "")
                found.append(
                    Contender(name, official, _stored_bytes(official, thread), delta=delta)
                )
        yield found


def run(quick: bool = False) -> dict[str, Any]:
    """Run the chat workload; print a Markdown report; return the figures."""
    turns = 20 if quick else 200
    window = 5 if quick else 20
    marks = [turns // 4 * q for q in range(1, 5)]
    samples = sorted({*marks, *range(turns // 20 or 1, turns + 1, turns // 20 or 1)})
    with tempfile.TemporaryDirectory() as workdir, contenders(workdir) as found:
        _play(found, turns, samples, "prose")
    figures = {c.name: _figures(c, turns, window, marks) for c in found}
    with tempfile.TemporaryDirectory() as workdir, contenders(workdir, "postgres") as letters:
        _play(letters, turns, [turns], "letter")
    for c in letters:
        figures[c.name]["bytes_one_letter_text"] = c.sizes[turns]
    _print(figures, turns, window, marks)
    return figures


def _play(found: list[Contender], turns: int, samples: list[int], text: str) -> None:
    """Run the turns on every contender, interleaved; measure; verify what was stored."""
    config = {"configurable": {"thread_id": "chat"}}
    for c in found:
        c.graph = build_graph(c.saver, delta=c.delta, text=text)
        c.sizes[0] = c.stored_bytes()
    for turn in range(1, turns + 1):
        for c in found:  # interleaved: the same turn on every saver in a row
            wall, cpu = time.perf_counter(), time.process_time()
            c.graph.invoke(human(turn, text), config)
            c.cpu.append(time.process_time() - cpu)
            c.wall.append(time.perf_counter() - wall)
            if turn in samples:
                c.sizes[turn] = c.stored_bytes()
    for c in found:
        start = time.perf_counter()
        state = c.graph.get_state(config)
        c.results["get_state_ms"] = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        history = list(c.graph.get_state_history(config))
        c.results["history_ms"] = (time.perf_counter() - start) * 1e3
        # verify: nothing looks fast by losing data
        messages = state.values["messages"]
        if len(messages) != 2 * turns or len(history) != 4 * turns:
            raise RuntimeError(
                f"{c.name}: {len(messages)} messages, {len(history)} checkpoints; "
                f"expected {2 * turns} and {4 * turns}"
            )
        if messages[-2].content != human(turns, text)["messages"][0].content:
            raise RuntimeError(f"{c.name}: last human message differs")


def _figures(c: Contender, turns: int, window: int, marks: list[int]) -> dict[str, Any]:
    early = slice(max(0, turns // 10 - window // 2), max(0, turns // 10 - window // 2) + window)
    first_quarter = c.sizes[marks[0]] - c.sizes[0]
    last_quarter = c.sizes[marks[3]] - c.sizes[marks[2]]
    return {
        "early_turn_ms": statistics.median(c.wall[early]) * 1e3,
        "last_turn_ms": statistics.median(c.wall[-window:]) * 1e3,
        "early_turn_cpu_ms": statistics.median(c.cpu[early]) * 1e3,
        "last_turn_cpu_ms": statistics.median(c.cpu[-window:]) * 1e3,
        "p95_turn_ms": statistics.quantiles(c.wall, n=20)[-1] * 1e3,
        "bytes": {turn: c.sizes[turn] for turn in marks},
        "bytes_by_turn": dict(sorted(c.sizes.items())),
        "wall_ms_by_turn": [round(t * 1e3, 3) for t in c.wall],
        "growth_last_vs_first_quarter": last_quarter / first_quarter if first_quarter else 0.0,
        **c.results,
    }


def _print(figures: dict[str, Any], turns: int, window: int, marks: list[int]) -> None:
    base = figures["checkpointkit memory"]
    print(f"## chat: {turns} turns on one thread (4 checkpoints per turn)\n")
    rows = []
    for name, f in figures.items():
        total = f["bytes"][marks[-1]]
        rows.append(
            [
                name,
                *(f"{f['bytes'][m] / 1024:,.0f}" for m in marks),
                f"{total / base['bytes'][marks[-1]]:.1f}x",
                f"{f['growth_last_vs_first_quarter']:.2f}",
            ]
        )
    print(
        md_table(
            ["saver", *(f"KiB @{m}" for m in marks), "vs checkpointkit", "last/first quarter"],
            rows,
        )
    )
    print()
    rows = []
    for name, f in figures.items():
        rows.append(
            [
                name,
                f"{f['early_turn_ms']:.2f}",
                f"{f['last_turn_ms']:.2f}",
                f"{f['last_turn_cpu_ms'] / f['early_turn_cpu_ms']:.2f}",
                f"{f['p95_turn_ms']:.2f}",
                f"{f['get_state_ms']:.2f}",
                f"{f['history_ms']:.1f}",
            ]
        )
    early = max(1, turns // 10)
    print(
        md_table(
            [
                "saver",
                f"ms/turn ~{early}",
                f"ms/turn last {window}",
                "CPU last/early",
                "p95 ms/turn",
                "get_state ms",
                "history ms",
            ],
            rows,
        )
    )
    letter = {
        n: f["bytes_one_letter_text"] for n, f in figures.items() if "bytes_one_letter_text" in f
    }
    if letter:
        print(f"\n### the same {turns} turns with one letter repeated as the text (PostgreSQL)\n")
        ours = letter.get("checkpointkit postgres")
        rows = [
            [name, f"{size / 1024:,.0f}", f"{size / ours:.1f}x" if ours else "-"]
            for name, size in letter.items()
        ]
        print(md_table(["saver", f"KiB @{turns}", "vs checkpointkit"], rows))
