"""Serde workload: one 200-message conversation through ours and LangGraph's serializer.

Checkpointers serialize the ``messages`` channel on every step, so this is the
hot path. The conversation alternates a ~200-character `HumanMessage` and a
~500-character `AIMessage`, every message with an id; every tenth AI turn
instead calls a tool (an `AIMessage` with ``tool_calls``) followed by the
`ToolMessage` answering it.

Each repetition times ``dumps_typed`` then ``loads_typed`` of the whole list
for every serializer, in an order rotated from one repetition to the next so
that no serializer always runs first (interleaved, same process, same data).
Reported: median and p95 in microseconds, the stored size, and the speed-up of
each of ours over `JsonPlusSerializer` (its median dumps+loads time divided by
ours; above 1 means we are faster).
"""

from __future__ import annotations

import base64
import gc
import math
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from checkpointkit.serde import CompressedSerializer, EncryptedSerializer, MsgpackSerializer

__all__ = ["build_conversation", "run"]

BASELINE = "JsonPlusSerializer"
OURS = "MsgpackSerializer"
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"


def _vocabulary(rng: random.Random, size: int = 2000) -> list[str]:
    # Word lengths and letter frequencies roughly like English, so the text
    # compresses about as well as real conversation text (not like "aaaa...").
    weights = [26 - i for i in range(len(_LETTERS))]
    return [
        "".join(rng.choices(_LETTERS, weights=weights, k=rng.randint(1, 10))) for _ in range(size)
    ]


def _text(rng: random.Random, vocabulary: list[str], n_chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < n_chars:
        word = rng.choice(vocabulary)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:n_chars]


def build_conversation(n_messages: int = 200) -> list[BaseMessage]:
    """Build the benchmark conversation (deterministic ids and contents)."""
    rng = random.Random(20240601)
    vocabulary = _vocabulary(rng)

    def text(n_chars: int) -> str:
        return _text(rng, vocabulary, n_chars)

    ids = (str(uuid.UUID(int=rng.getrandbits(128))) for _ in iter(int, 1))
    messages: list[BaseMessage] = []
    turn = 0
    while len(messages) < n_messages:
        messages.append(HumanMessage(content=text(200), id=next(ids)))
        if turn % 10 == 9 and len(messages) + 2 <= n_messages:
            call_id = f"call_{turn:04d}"
            messages.append(
                AIMessage(
                    content="",
                    id=next(ids),
                    tool_calls=[
                        {
                            "name": "search",
                            "args": {"query": text(40), "limit": 5},
                            "id": call_id,
                        }
                    ],
                )
            )
            messages.append(ToolMessage(content=text(300), tool_call_id=call_id, id=next(ids)))
        elif len(messages) < n_messages:
            messages.append(AIMessage(content=text(500), id=next(ids)))
        turn += 1
    return messages[:n_messages]


def _serializers() -> dict[str, Any]:
    key = base64.b64encode(bytes(range(32))).decode()  # fixed benchmark key
    return {
        OURS: MsgpackSerializer(),
        "CompressedSerializer(Msgpack)": CompressedSerializer(MsgpackSerializer()),
        "EncryptedSerializer(Compressed(Msgpack))": EncryptedSerializer(
            CompressedSerializer(MsgpackSerializer()), keys={"bench": key}
        ),
        BASELINE: JsonPlusSerializer(),
    }


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))  # nearest-rank
    return ordered[rank - 1]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(samples), 1),
        "p95_us": round(_percentile(samples, 95), 1),
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - start) / 1000, result


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the workload, print a Markdown table and return the figures.

    Args:
        quick: Few repetitions, for a smoke test rather than a measurement.

    Returns:
        ``{"workload", "messages", "repeats", "results": {name: {"dumps",
        "loads", "total": {"median_us", "p95_us"}, "bytes"}}, "speedup":
        {name: JsonPlus median total / that serializer's median total}}``.
    """
    messages = build_conversation()
    serializers = _serializers()
    names = list(serializers)
    for name, serde in serializers.items():  # correctness first, and warm-up
        for _ in range(3):
            if serde.loads_typed(serde.dumps_typed(messages)) != messages:
                raise RuntimeError(f"{name} does not round-trip the conversation")
    repeats = 20 if quick else 300
    samples: dict[str, dict[str, list[float]]] = {
        name: {"dumps": [], "loads": [], "total": []} for name in names
    }
    sizes = {name: len(serde.dumps_typed(messages)[1]) for name, serde in serializers.items()}
    for rep in range(repeats):
        gc.collect()
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            serde = serializers[name]
            dumps_us, blob = _timed(lambda serde=serde: serde.dumps_typed(messages))
            loads_us, _ = _timed(lambda serde=serde, blob=blob: serde.loads_typed(blob))
            samples[name]["dumps"].append(dumps_us)
            samples[name]["loads"].append(loads_us)
            samples[name]["total"].append(dumps_us + loads_us)
    results = {
        name: {
            **{phase: _summary(values) for phase, values in samples[name].items()},
            "bytes": sizes[name],
        }
        for name in names
    }
    baseline = results[BASELINE]["total"]["median_us"]
    speedup = {
        name: round(baseline / results[name]["total"]["median_us"], 2)
        for name in names
        if name != BASELINE
    }
    figures = {
        "workload": "serde: dumps_typed + loads_typed of a 200-message conversation",
        "messages": len(messages),
        "repeats": repeats,
        "results": results,
        "speedup": speedup,
    }
    print(_table(figures))
    return figures


def _table(figures: dict[str, Any]) -> str:
    lines = [
        f"### {figures['workload']} ({figures['repeats']} interleaved repetitions)",
        "",
        "| serializer | dumps median / p95 (µs) | loads median / p95 (µs) "
        "| total median / p95 (µs) | bytes | speed-up vs JsonPlus |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, result in figures["results"].items():
        cells = [
            f"{result[phase]['median_us']:,.0f} / {result[phase]['p95_us']:,.0f}"
            for phase in ("dumps", "loads", "total")
        ]
        ratio = figures["speedup"].get(name)
        ratio_cell = f"{ratio:.2f}x" if ratio is not None else "1.00x (baseline)"
        lines.append(f"| {name} | {' | '.join(cells)} | {result['bytes']:,} | {ratio_cell} |")
    return "\n".join(lines)
