"""Run every benchmark workload: ``python -m benchmarks [--quick] [workload ...]``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import io
import json
import os
import platform
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

#: Workload modules, each exposing ``run(quick: bool = False) -> dict``.
#: Add new workloads here.
WORKLOADS: list[str] = [
    "benchmarks.serde",
    "benchmarks.chat",
    "benchmarks.api",
    "benchmarks.fanout",
    "benchmarks.forks",
]


def describe_machine() -> str:
    """Return a one-line description of the machine, printed with the results."""
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, processor: {platform.processor() or 'unknown'}"
    )


def describe_versions() -> str:
    """Return the versions of the packages being compared."""
    names = ["checkpointkit", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite",
             "langgraph-checkpoint-postgres", "psycopg", "redis", "msgpack"]  # fmt: skip
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found) + f", SQLite {sqlite3.sqlite_version}"


class _Tee(io.TextIOBase):
    """Copy what is printed into a buffer for the Markdown report."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.buffer_ = io.StringIO()

    def write(self, text: str) -> int:
        self.out.write(text)
        return self.buffer_.write(text)

    def flush(self) -> None:
        self.out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the selected workloads, print and save the report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions: a smoke test, not a measurement"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="directory for report.md, figures.json and charts "
        "(default: benchmarks/results for a full run, none for --quick)",
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="workload",
        help="workload names, e.g. 'serde' (default: all of them)",
    )
    args = parser.parse_args(argv)
    selected = WORKLOADS
    if args.workloads:
        wanted = {name.removeprefix("benchmarks.") for name in args.workloads}
        selected = [name for name in WORKLOADS if name.removeprefix("benchmarks.") in wanted]
        unknown = wanted - {name.removeprefix("benchmarks.") for name in selected}
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    output = args.output
    if output is None and not args.quick:
        output = Path(__file__).resolve().parent / "results"
    tee = _Tee(sys.stdout)
    figures: dict[str, Any] = {}
    with contextlib.redirect_stdout(tee):  # type: ignore[type-var]
        print("# checkpointkit benchmarks\n")
        print(f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
        print(f"- Machine: {describe_machine()}")
        print(f"- Versions: {describe_versions()}")
        print(f"- Profile: {'quick (smoke test)' if args.quick else 'full'}\n")
        for name in selected:
            figures[name.removeprefix("benchmarks.")] = importlib.import_module(name).run(
                quick=args.quick
            )
            print()
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / "report.md").write_text(tee.buffer_.getvalue())
        (output / "figures.json").write_text(json.dumps(figures, indent=1, default=str))
        if "chat" in figures:
            from benchmarks.charts import chat_charts

            chat_charts(figures["chat"], output)
        print(f"report written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
