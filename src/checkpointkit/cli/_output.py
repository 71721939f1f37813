"""Tables, one-line values and progress bars for the command, drawn with rich.

rich (the ``cli`` extra) is imported when a table or a bar is drawn, so
``--json`` output works without it. Tables go to stdout at the terminal's
width, or 200 columns when stdout is not a terminal (a pipe or a file), so
ids are not cut. Progress bars go to stderr, and only when it is a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from checkpointkit.errors import MissingDependencyError
from checkpointkit.transfer import Progress, ThreadReport, TransferReport

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["RichProgress", "console", "one_line", "print_table", "progress_for", "report_table"]

_PIPE_WIDTH = 200


def _rich() -> None:
    try:
        import rich  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError.for_extra("the checkpointkit command", "cli", "rich") from exc


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def console(stream: TextIO) -> Console:
    """Return a rich console writing to `stream` (no colour unless it is a terminal)."""
    _rich()
    from rich.console import Console

    if _is_tty(stream):
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=_PIPE_WIDTH, no_color=True, highlight=False)


def one_line(value: Any, limit: int = 120) -> str:
    """Render a rendered value on one line: ``[type] content`` for a message, else JSON."""
    if isinstance(value, dict) and set(value) >= {"type", "content"}:
        content = value["content"]
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        text = f"[{value['type']}] {text}"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_table(
    stream: TextIO,
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    no_wrap: Sequence[str] = (),
) -> None:
    """Print a table; the columns named in `no_wrap` are never wrapped."""
    out = console(stream)
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        table.add_column(name, no_wrap=name in no_wrap, overflow="fold")
    for row in rows:
        # Text(), not markup: values may hold square brackets
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    out.print(table)


def report_table(stream: TextIO, report: TransferReport, title: str) -> None:
    """Print the per-thread summary of a copy, import, export or check."""
    rows = []
    for r in report.threads:
        digest = r.target or r.source
        rows.append(
            (
                r.thread_id,
                r.status,
                r.written,
                digest.checkpoints if digest else "",
                digest.writes if digest else "",
                digest.sha256[:16] if digest else "",
                _verdict(r),
            )
        )
    total = (
        f"{len(report.threads)} thread(s), {report.checkpoints} checkpoint(s), "
        f"{report.writes} write(s): " + ("all verified" if report.ok else "NOT all verified")
    )
    print_table(
        stream,
        title,
        ("thread", "status", "put", "checkpoints", "writes", "sha256", "verified"),
        rows,
        no_wrap=("thread", "sha256"),
    )
    stream.write(total + "\n")


def _verdict(r: ThreadReport) -> str:
    if r.status == "exported":
        return "-" if r.error is None else "no"
    return "yes" if r.verified else "no"


class RichProgress(Progress):
    """Progress hooks drawing rich bars on stderr: threads, and the thread's checkpoints."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(stream),
            transient=True,
        )
        self._threads = self._bar.add_task("threads", total=None)
        self._current = self._bar.add_task("", total=None, visible=False)

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, threads: int) -> None:
        self._bar.update(self._threads, total=threads)

    def thread_started(self, thread_id: str, checkpoints: int) -> None:
        self._bar.reset(self._current, total=checkpoints, visible=True)
        self._bar.update(self._current, description=f"  {thread_id}")

    def advance(self, thread_id: str, checkpoints: int = 1) -> None:
        self._bar.advance(self._current, checkpoints)

    def thread_done(self, report: ThreadReport) -> None:
        self._bar.advance(self._threads)


@contextmanager
def progress_for(stream: TextIO, quiet: bool) -> Iterator[Progress]:
    """Yield progress hooks: a rich bar on a terminal, nothing when quiet or piped."""
    if quiet or not _is_tty(stream):
        yield Progress()
        return
    _rich()
    with RichProgress(stream) as bar:
        yield bar
