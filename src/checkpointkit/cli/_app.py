"""The command's frame: argument parsing, opening URLs, output, and errors as one line.

`main` builds the parser from the command modules (each has ``register``),
runs the chosen command with an `App` (streams, options, how to open a URL),
and turns every failure into one ``checkpointkit: error: ...`` line on
stderr with passwords redacted: exit status 2 for a usage error (bad
arguments, bad URL, bad filter), 1 for a runtime error (server unreachable,
unknown thread, damaged file, failed verification), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit.connect import open_checkpointer, redact
from checkpointkit.errors import CheckpointKitError, ConfigurationError
from checkpointkit.inspect import UnknownCheckpointError

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "App", "main"]

PROG = "checkpointkit"
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_TIMEOUT = 10.0
# Loggers of drivers that report connection retries on stderr; quiet unless --verbose.
_DRIVER_LOGGERS = ("psycopg", "psycopg.pool", "redis")

Runner = Callable[[argparse.Namespace, "App"], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to the streams `main` was given, not sys.std*."""

    streams: tuple[TextIO, TextIO] | None = None

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        if self.streams is not None:
            file = self.streams[0] if file is sys.stdout else self.streams[1]
        (file or sys.stderr).write(message)


@dataclass
class App:
    """What a command runs with: its streams, global options and URL opener."""

    stdout: TextIO
    stderr: TextIO
    timeout: float = DEFAULT_TIMEOUT
    quiet: bool = False
    urls: list[str] = field(default_factory=list)  # given on the command line, to redact

    @contextlib.contextmanager
    def open(self, url: str, *, create: bool = False) -> Iterator[BaseCheckpointSaver[Any]]:
        """Open a checkpointer by URL (see `checkpointkit.connect`).

        Args:
            url: The checkpointer URL.
            create: Allow a SQLite URL to name a file that does not exist yet
                (a copy or import target); otherwise a missing file is an error,
                not a new empty database.
        """
        self.urls.append(url)
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        options: dict[str, Any] = {}
        if scheme in ("postgresql", "postgres"):
            options["timeout"] = self.timeout  # the pool's wait for a first connection
        elif scheme == "langgraph+postgresql" and "connect_timeout=" not in url:
            # LangGraph's saver opens one connection: bound it by libpq's own timeout
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}connect_timeout={max(1, round(self.timeout))}"
        if not create and scheme in ("sqlite", "langgraph+sqlite"):
            _check_sqlite_file(url)
        with open_checkpointer(url, **options) as saver:
            yield saver

    def print_json(self, data: Any) -> None:
        """Write a JSON document to stdout."""
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")

    def echo(self, text: str = "") -> None:
        """Write a line of text to stdout."""
        self.stdout.write(text + "\n")

    def note(self, text: str) -> None:
        """Write a line to stderr, unless --quiet."""
        if not self.quiet:
            self.stderr.write(text + "\n")

    def redact(self, message: str) -> str:
        """Remove the passwords of the URLs this run was given from a message."""
        for url in self.urls:
            try:
                password = urlsplit(url).password
            except ValueError:
                continue
            if password:
                message = message.replace(url, redact(url))
                for secret in {password, unquote(password)}:
                    message = message.replace(secret, "***")
        return message


def _check_sqlite_file(url: str) -> None:
    path = url.split("://", 1)[1].split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path
    if not path or path == ":memory:" or path.startswith("file:"):
        return  # connect reports an empty path; the others are not plain files
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"no SQLite database at {path!r} (from {redact(url)!r}); use sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )


def common_options() -> argparse.ArgumentParser:
    """Return the parent parser of the options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for a database server (default {DEFAULT_TIMEOUT:g})",
    )
    common.add_argument(
        "--verbose", action="store_true", help="show the drivers' log messages on stderr"
    )
    return common


def positive_int(text: str) -> int:
    """Parse an int >= 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """Parse a number > 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser(stdout: TextIO, stderr: TextIO) -> argparse.ArgumentParser:
    """Build the argument parser with every command module's commands."""
    from checkpointkit import __version__
    from checkpointkit.cli import history, maintenance, state, threads
    from checkpointkit.cli import transfer as transfer_commands

    parser = _Parser(
        prog=PROG,
        description="Inspect, fork, prune, export, import and copy LangGraph checkpoints "
        "in any backend, by URL: memory://, sqlite:///path.db, "
        "postgresql://...?schema=, redis://...?prefix=, and LangGraph's own "
        "langgraph+sqlite:///path.db and langgraph+postgresql://...",
    )
    parser.streams = (stdout, stderr)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    common = common_options()
    for module in (threads, history, state, maintenance, transfer_commands):
        module.register(commands, common)
    for sub in commands.choices.values():
        sub.streams = (stdout, stderr)  # type: ignore[attr-defined]
    return parser


@contextlib.contextmanager
def _quiet_drivers(verbose: bool) -> Iterator[None]:
    """Keep drivers' retry warnings off stderr: the error line says what failed."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        yield
        return
    loggers = [logging.getLogger(name) for name in _DRIVER_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _silence(stream: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null so the exit-time flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``checkpointkit`` command; return its exit status.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        stdout: Where output goes (default: ``sys.stdout``).
        stderr: Where errors and progress go (default: ``sys.stderr``).
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser(out, err)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    app = App(out, err, timeout=args.timeout, quiet=getattr(args, "quiet", False))
    run: Runner = args.run
    code = EXIT_ERROR
    message: str | None = None
    try:
        with _quiet_drivers(args.verbose):
            code = run(args, app)
    except UnknownCheckpointError as exc:
        message = str(exc)
    except ConfigurationError as exc:  # bad URL, filter, strategy...: a usage error
        code, message = EXIT_USAGE, str(exc)
    except CheckpointKitError as exc:
        message = str(exc)
    except KeyboardInterrupt:
        code, message = EXIT_INTERRUPTED, "interrupted (a copy or import resumes when rerun)"
    except BrokenPipeError:  # the reader went away (| head): not an error
        _silence(out)
        return 0
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        message = f"{exc.strerror or exc}{where}"
    except Exception as exc:  # a driver's own error (LangGraph's savers): still one line
        message = f"{type(exc).__name__}: {exc}"
    if message is not None:
        err.write(f"{PROG}: error: {_one_line(app.redact(message))}\n")
    return code
