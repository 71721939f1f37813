"""Charts of the benchmark report: storage and latency against conversation length."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chat_charts(figures: dict[str, Any], output: Path) -> Path | None:
    """Draw the chat workload's storage-vs-turns and latency-vs-turns; return the PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no chart drawn")
        return None
    fig, (storage, latency) = plt.subplots(1, 2, figsize=(13, 5))
    for name, f in figures.items():
        points = [(int(t), b / 2**20) for t, b in f["bytes_by_turn"].items() if int(t) > 0]
        turns, mib = zip(*points, strict=True)
        style = "-" if name.startswith("checkpointkit") else "--"
        storage.plot(turns, mib, style, label=name)
        wall = f["wall_ms_by_turn"]
        window = 10
        smooth = [
            sorted(wall[max(0, i - window) : i + 1])[len(wall[max(0, i - window) : i + 1]) // 2]
            for i in range(len(wall))
        ]
        latency.plot(range(1, len(wall) + 1), smooth, style, label=name)
    storage.set(title="Stored bytes", xlabel="turn", ylabel="MiB", yscale="log")
    latency.set(title="Latency per turn (running median)", xlabel="turn", ylabel="ms")
    storage.legend(fontsize=8)
    latency.legend(fontsize=8)
    fig.tight_layout()
    path = output / "chat.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
