"""Run one server process in a temporary directory and make sure it goes away.

The lifecycle shared by the throwaway servers in ``servers``: a work directory
``$TMPDIR/ckt-harness-<pid>-<kind>-*``, a log file, a readiness wait bounded by
a timeout, and a stop that leaves nothing behind:

* ``close()`` (or leaving the ``with`` block) stops the process group and
  deletes the directory; an ``atexit`` hook closes whatever is still open when
  the interpreter exits, after a Ctrl-C included.
* Servers run in a session of their own, so a Ctrl-C in the terminal reaches
  pytest (which then runs its teardown) and not the servers in mid-test; and a
  ``killpg`` reaches every process a server forked.
* A server started from the main thread gets a parent-death signal through
  ``setpriv`` (util-linux) when available, so even a SIGKILL of the test
  process leaves no orphan. Directories of dead test processes are swept, and
  any server still running from them killed, the next time a server starts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

LOOPBACK = "127.0.0.1"
LOG_TAIL_BYTES = 4000
_WORKDIR_PREFIX = "ckt-harness-"
_PIDS_FILE = "server.pids"

_S = TypeVar("_S", bound="ManagedServer")


class ServerError(RuntimeError):
    """A throwaway test server could not be found, started or stopped."""


class ServerStartError(ServerError):
    """A server process did not become ready; the message ends with its log tail."""


class PortInUseError(ServerStartError):
    """The port picked for a server was taken between picking and binding."""


# --------------------------------------------------------------------------- ports


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_pair(offset: int = 10000, host: str = LOOPBACK) -> int:
    """Return a free port ``p`` such that ``p + offset`` is free too (a Redis cluster bus).

    Ephemeral ports from the kernel can sit too high for ``p + offset``, so the
    candidates are drawn from a fixed range below the ephemeral one instead.
    """
    for _ in range(200):
        port = random.randrange(20000, 32000)
        if _port_is_free(port, host) and _port_is_free(port + offset, host):
            return port
    raise ServerStartError(f"found no free port pair (p, p+{offset}) on {host} in 200 tries")


def _port_is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# --------------------------------------------------------------------------- processes


_live: set[ManagedServer] = set()
_live_lock = threading.Lock()
_swept = False
_SETPRIV = shutil.which("setpriv")


def _close_all_at_exit() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()


atexit.register(_close_all_at_exit)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """Tell whether any non-zombie process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL process group ``pgid`` and wait (bounded) until its members are gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _sweep_stale_workdirs() -> None:
    """Delete work directories of dead test processes, killing servers still running there.

    A server is only killed when its current directory lies in the stale work
    directory, so a recycled pid never hits an unrelated process.
    """
    global _swept
    if _swept:
        return
    _swept = True
    for workdir in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        match = re.match(rf"{_WORKDIR_PREFIX}(\d+)-", workdir.name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError, ValueError):
            for line in (workdir / _PIDS_FILE).read_text().split():
                pid = int(line)
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/cwd").startswith(str(workdir)):
                        _kill_group(pid)
        shutil.rmtree(workdir, ignore_errors=True)


def make_workdir(kind: str) -> Path:
    _sweep_stale_workdirs()
    return Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-{kind}-"))


class ManagedServer:
    """One server process in its own work directory; subclasses say how to run it."""

    kind: ClassVar[str]
    death_signal: ClassVar[str] = "KILL"  # sent by the kernel if the test process dies
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(
        self, *, host: str = LOOPBACK, port: int | None = None, startup_timeout: float = 30.0
    ) -> None:
        self.host = host
        self._port = port
        self._port_fixed = port is not None
        self.startup_timeout = startup_timeout
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- what subclasses provide
    def _prepare(self) -> None:
        """Set up the work directory before the first start (e.g. ``initdb``)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _pick_port(self) -> int:
        return free_port(self.host)

    def _run_as(self) -> tuple[int, int] | None:
        """Return the (uid, gid) to run the server as, or ``None`` for the current user."""
        return None

    # -- state
    @property
    def port(self) -> int:
        """The TCP port, fixed at the first start and kept across restarts."""
        if self._port is None:
            raise ServerError(f"{self!r} has no port yet: call start() first")
        return self._port

    @property
    def workdir(self) -> Path:
        """The server's temporary directory (data, log, sockets)."""
        if self._workdir is None:
            raise ServerError(f"{self!r} has no work directory yet: call start() first")
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else ``None``."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, since_start: bool = True) -> str:
        """Return the end of the server log (by default only what the last start wrote)."""
        try:
            with self.log_path.open("rb") as log:
                start = self._log_offset if since_start else 0
                log.seek(max(start, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace").strip()
        except (OSError, ServerError):
            return "(no log)"

    # -- lifecycle
    def start(self: _S) -> _S:
        """Start the server and wait until it accepts connections; a no-op if it runs.

        A failed first start deletes the work directory again (the error carries
        the log tail); a failed restart keeps it, data included.

        Returns:
            The server itself, for chaining.

        Raises:
            ServerStartError: The server exited or was not ready within ``startup_timeout``.
        """
        if self.running:
            return self
        first = self._workdir is None
        try:
            if first:
                self._workdir = make_workdir(self.kind)
                with _live_lock:
                    _live.add(self)
                run_as = self._run_as()
                if run_as is not None:
                    os.chown(self._workdir, *run_as)
                self._prepare()
            for _attempt in range(3):
                if self._port is None:
                    self._port = self._pick_port()
                try:
                    self._launch()
                    return self
                except PortInUseError:
                    # Lost the race for the port picked at the first start: pick another.
                    if self._port_fixed or not first:
                        raise
                    self._port = None
            raise ServerStartError(f"{self!r}: the port picked was taken three times")
        except BaseException:
            if first:
                self.close()
            raise

    def _launch(self) -> None:
        command = self._command()
        if _SETPRIV and threading.current_thread() is threading.main_thread():
            # The kernel signals the server when the thread that started it dies,
            # so a server started from a worker thread must not get the signal.
            command = [_SETPRIV, "--pdeathsig", self.death_signal, "--", *command]
        run_as = self._run_as()
        user_kwargs: dict[str, object] = {}
        if run_as is not None:
            user_kwargs = {"user": run_as[0], "group": run_as[1], "extra_groups": []}
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._proc = subprocess.Popen(  # type: ignore[call-overload]
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # own process group: Ctrl-C spares it, killpg reaches all
                **user_kwargs,
            )
        with (self.workdir / _PIDS_FILE).open("a") as pids:
            pids.write(f"{self._proc.pid}\n")
        self._wait_ready()

    def _wait_ready(self) -> None:
        if self._proc is None:
            raise ServerError(f"{self!r}: _wait_ready() called before the process was started")
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                self._reap()
                tail = self.log_tail()
                error = PortInUseError if "Address already in use" in tail else ServerStartError
                raise error(f"{self!r} exited with code {code} while starting; log:\n{tail}")
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                self._reap(kill=True)
                raise ServerStartError(
                    f"{self!r} was not ready after {self.startup_timeout:.0f}s; "
                    f"log ({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _reap(self, kill: bool = False, timeout: float = 10.0) -> None:
        """Wait for the main process (SIGKILL its group first if ``kill``); kill stragglers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            _kill_group(proc.pid)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(timeout)
        # Children left by a crashed parent (e.g. PostgreSQL backends) share its group.
        _kill_group(proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGKILL after ``timeout`` s), keeping its data."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._reap(kill=True)
                return
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server and all its processes, as in a crash; the data stays for start()."""
        self._reap(kill=True)

    def restart(self) -> None:
        """Stop the server gracefully and start it again on the same port and data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its work directory; safe to call twice."""
        try:
            self.stop()
        finally:
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None
            with _live_lock:
                _live.discard(self)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else "not started"
        return f"<{type(self).__name__} {where}>"
