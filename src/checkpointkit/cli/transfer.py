"""``checkpointkit export``, ``import`` and ``copy``: move threads between backends.

The work (resuming, verifying, the file format) is `checkpointkit.transfer`'s;
these commands open the URLs, draw the progress bar on stderr (a terminal
only, and not with ``--quiet``) and print the per-thread summary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from checkpointkit.cli._app import App
from checkpointkit.cli._output import progress_for, report_table
from checkpointkit.connect import redact
from checkpointkit.transfer import (
    TransferReport,
    copy_threads,
    export_threads,
    import_threads,
    verify_threads,
)

__all__ = ["register"]


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no notes on stderr"
    )


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``export``, ``import`` and ``copy`` commands."""
    export = commands.add_parser(
        "export",
        parents=[common],
        help="write threads to a portable file (JSON Lines, versioned)",
        description="Write threads (all of them if none is named) to an export file: "
        "JSON Lines with a versioned header, one line per checkpoint (values as "
        "typed msgpack in base64), a checksum per thread. See docs/export-format.md.",
    )
    export.add_argument("url", metavar="URL", help="the checkpointer's URL")
    export.add_argument("threads", metavar="THREAD", nargs="*", help="thread ids (default: all)")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (default: standard output)"
    )
    _quiet(export)
    export.set_defaults(run=run_export)

    import_ = commands.add_parser(
        "import",
        parents=[common],
        help="read an export file into a checkpointer (resumable, verified)",
        description="Import an export file ('-' for standard input). Threads already "
        "there whole are skipped; a thread an interrupted import left half-done is "
        "completed; each thread is verified against the file's checksum.",
    )
    import_.add_argument("url", metavar="URL", help="the target checkpointer's URL")
    import_.add_argument("file", metavar="FILE", help="the export file, or - for stdin")
    import_.add_argument("--json", action="store_true", help="print the summary as JSON")
    _quiet(import_)
    import_.set_defaults(run=run_import)

    copy = commands.add_parser(
        "copy",
        parents=[common],
        help="copy every thread between two backends (resumable, verified)",
        description="Copy threads from SOURCE_URL to TARGET_URL (any two backends, "
        "LangGraph's own savers included) through the public saver API. A rerun "
        "skips threads already copied whole and completes the others; every thread "
        "is read back on both sides and compared (counts and a SHA-256).",
    )
    copy.add_argument("source", metavar="SOURCE_URL", help="where to read")
    copy.add_argument("target", metavar="TARGET_URL", help="where to write")
    copy.add_argument(
        "--thread",
        dest="threads",
        action="append",
        metavar="T",
        help="copy this thread only (repeat for several; default: all)",
    )
    copy.add_argument(
        "--check", action="store_true", help="compare the two sides only; write nothing"
    )
    copy.add_argument("--json", action="store_true", help="print the summary as JSON")
    _quiet(copy)
    copy.set_defaults(run=run_copy)


def _finish(app: App, report: TransferReport, title: str, as_json: bool) -> int:
    if as_json:
        app.print_json(report.to_dict())
    else:
        report_table(app.stdout, report, title)
    for r in report.threads:
        if r.error:
            app.stderr.write(f"checkpointkit: thread {r.thread_id}: {app.redact(r.error)}\n")
    return 0 if report.ok else 1


@contextlib.contextmanager
def _output(path: str | None, stdout: TextIO) -> Iterator[TextIO]:
    """Yield the export's stream; a file is written aside and renamed when complete."""
    if path is None or path == "-":
        yield stdout
        return
    partial = f"{path}.partial"
    try:
        with open(partial, "w", encoding="utf-8") as stream:
            yield stream
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


def run_export(args: argparse.Namespace, app: App) -> int:
    """Export threads."""
    with (
        app.open(args.url) as saver,
        _output(args.output, app.stdout) as stream,
        progress_for(app.stderr, app.quiet or stream is app.stdout) as progress,
    ):
        report = export_threads(
            saver, stream, args.threads or None, source_name=redact(args.url), progress=progress
        )
    app.note(
        f"exported {len(report.threads)} thread(s), {report.checkpoints} checkpoint(s), "
        f"{report.writes} write(s)" + (f" to {args.output}" if args.output else "")
    )
    return 0


def run_import(args: argparse.Namespace, app: App) -> int:
    """Import an export file."""
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            stream: TextIO = sys.stdin
        else:
            stream = stack.enter_context(open(args.file, encoding="utf-8"))
        saver = stack.enter_context(app.open(args.url, create=True))
        progress = stack.enter_context(progress_for(app.stderr, app.quiet))
        report = import_threads(saver, stream, progress=progress)
    return _finish(app, report, f"import into {redact(args.url)}", args.json)


def run_copy(args: argparse.Namespace, app: App) -> int:
    """Copy (or compare) threads between two checkpointers."""
    with (
        app.open(args.source) as source,
        app.open(args.target, create=not args.check) as target,
        progress_for(app.stderr, app.quiet) as progress,
    ):
        operation = verify_threads if args.check else copy_threads
        report = operation(source, target, args.threads, progress=progress)
    title = f"{'check' if args.check else 'copy'} {redact(args.source)} -> {redact(args.target)}"
    return _finish(app, report, title, args.json)
