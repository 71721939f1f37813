"""Throwaway PostgreSQL and Redis servers started from the local binaries.

``PostgresServer``, ``RedisServer`` and ``RedisCluster`` each run on free
loopback ports in their own temporary directories, with ``start`` / ``stop`` /
``restart`` / ``kill`` (SIGKILL, as in a crash) / ``close`` (stop and delete);
the process lifecycle and the no-orphan guarantees live in ``_process``.

Readiness is checked without a client library: PostgreSQL's ``postmaster.pid``
status line, Redis's ``PING`` over a raw socket (``_resp``). A server that does
not come up raises ``ServerStartError`` ending with its log tail; missing
binaries raise ``ServerNotInstalledError`` naming the command that installs
them. Nothing here imports pytest or a database driver, so
``tools/ensure_servers.py`` can use it too.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from tests.harness._process import (
    LOG_TAIL_BYTES,
    LOOPBACK,
    ManagedServer,
    ServerError,
    ServerStartError,
    free_port,
    free_port_pair,
    make_workdir,
)
from tests.harness._resp import RedisReplyError, redis_command

__all__ = [
    "PostgresServer",
    "RedisCluster",
    "RedisServer",
    "ServerError",
    "ServerNotInstalledError",
    "ServerStartError",
    "find_postgres_bindir",
    "find_redis_server",
]

POSTGRES_PACKAGE = "postgresql"
REDIS_PACKAGE = "redis-server"


class ServerNotInstalledError(ServerError, FileNotFoundError):
    """The server binaries are not installed; ``fix`` is the command that installs them."""

    def __init__(self, message: str, package: str) -> None:
        self.reason = message
        self.package = package
        self.fix = f"{'' if os.geteuid() == 0 else 'sudo '}apt-get install -y {package}"
        super().__init__(f"{message}; to install: {self.fix}")


# --------------------------------------------------------------------------- binaries


def find_postgres_bindir() -> Path:
    """Return the directory holding PostgreSQL's ``initdb`` and ``postgres``.

    ``initdb`` on ``PATH`` wins (its symlinks resolved, so a link in
    ``/usr/local/bin`` finds the real directory); then the newest
    ``/usr/lib/postgresql/<version>/bin``, where Debian and Ubuntu put them.

    Raises:
        ServerNotInstalledError: Neither place has both binaries.
    """
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(p) for p in sorted(versioned, key=_version_key, reverse=True))
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    raise ServerNotInstalledError(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH "
        "or under /usr/lib/postgresql/*/bin",
        POSTGRES_PACKAGE,
    )


def find_redis_server() -> Path:
    """Return the path of ``redis-server``.

    Raises:
        ServerNotInstalledError: It is neither on ``PATH`` nor in ``/usr/bin``.
    """
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if found is None:
        raise ServerNotInstalledError("redis-server not found on PATH", REDIS_PACKAGE)
    return Path(found)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name)) or (0,)


# --------------------------------------------------------------------------- PostgreSQL

# One initdb per (bindir, uid, role) and process; each server copies it (40 ms, not 500 ms).
_pg_templates: dict[tuple[str, int, str], Path] = {}
_pg_template_lock = threading.Lock()


def _remove_templates() -> None:
    for datadir in _pg_templates.values():
        shutil.rmtree(datadir.parent, ignore_errors=True)


atexit.register(_remove_templates)


def _postgres_os_user() -> tuple[int, int] | None:
    """Return the (uid, gid) PostgreSQL must run as, creating the user if needed.

    PostgreSQL refuses to run as root, so as root it runs as ``postgres``.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "postgres"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerStartError(
                "running as root, PostgreSQL needs an unprivileged user and "
                f"`useradd --system postgres` failed: {result.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


class PostgresServer(ManagedServer):
    """A throwaway PostgreSQL server (trust auth, superuser ``user``, C locale).

    Args:
        durable: Acknowledge a commit only once its WAL reached the OS
            (``synchronous_commit=on``), so it survives ``kill()``. ``fsync`` stays
            off either way: the page cache survives a process crash, only a power
            cut would need it. The shared test server runs with ``durable=False``.
        settings: Extra ``postgres -c`` settings, applied last.
        user: The superuser role the URI logs in as.
        host: Listen address.
        port: TCP port; a free one by default.
        startup_timeout: Seconds to wait for readiness.
    """

    kind = "postgres"
    death_signal = "QUIT"  # immediate shutdown: the postmaster takes its children down
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit

    FAST_SETTINGS: ClassVar[Mapping[str, str]] = {
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "off",
    }

    def __init__(
        self,
        *,
        durable: bool = False,
        settings: Mapping[str, str] | None = None,
        user: str = "postgres",
        host: str = LOOPBACK,
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(host=host, port=port, startup_timeout=startup_timeout)
        self.bindir = find_postgres_bindir()
        self.user = user
        self.settings = dict(self.FAST_SETTINGS)
        if durable:
            self.settings["synchronous_commit"] = "on"
        self.settings.update(settings or {})
        self._os_user = _postgres_os_user()

    @property
    def uri(self) -> str:
        """``postgresql://<user>@<host>:<port>/postgres``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "sock"

    def _run_as(self) -> tuple[int, int] | None:
        return self._os_user

    def _prepare(self) -> None:
        template = self._template()
        shutil.copytree(template, self.datadir, symlinks=True)
        self.socket_dir.mkdir()
        if self._os_user is not None:
            for path in [self.socket_dir, *self.datadir.rglob("*"), self.datadir]:
                os.chown(path, *self._os_user, follow_symlinks=False)

    def _template(self) -> Path:
        uid = self._os_user[0] if self._os_user else os.geteuid()
        key = (str(self.bindir), uid, self.user)
        with _pg_template_lock:
            if key in _pg_templates and _pg_templates[key].is_dir():
                return _pg_templates[key]
            workdir = make_workdir("pgtemplate")
            if self._os_user is not None:
                os.chown(workdir, *self._os_user)
            datadir = workdir / "data"
            user_kwargs: dict[str, object] = {}
            if self._os_user is not None:
                uid, gid = self._os_user
                user_kwargs = {"user": uid, "group": gid, "extra_groups": []}
            result = subprocess.run(  # type: ignore[call-overload]
                [
                    str(self.bindir / "initdb"),
                    f"--pgdata={datadir}",
                    f"--username={self.user}",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                cwd=workdir,
                capture_output=True,
                text=True,
                check=False,
                **user_kwargs,
            )
            if result.returncode != 0:
                shutil.rmtree(workdir, ignore_errors=True)
                output = (result.stdout + result.stderr).strip()[-LOG_TAIL_BYTES:]
                raise ServerStartError(f"initdb failed with code {result.returncode}:\n{output}")
            _pg_templates[key] = datadir
            return datadir

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            **self.settings,
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _is_ready(self) -> bool:
        # pg_ctl's own test: line 8 of postmaster.pid says "ready" once connections
        # are accepted. Line 1 must be our pid: a killed server leaves a stale file.
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and self._proc is not None
            and lines[0].strip() == str(self._proc.pid)
            and lines[7].strip() == "ready"
        )


# --------------------------------------------------------------------------- Redis


class RedisServer(ManagedServer):
    """A throwaway Redis server.

    Args:
        appendonly: Keep an append-only file fsynced on every write
            (``appendfsync always``), so acknowledged writes survive ``kill()``.
            Otherwise nothing is persisted (``save ""``).
        cluster: Run as a cluster node (``cluster-enabled yes``; its bus port is
            ``port + 10000``). See ``RedisCluster``.
        extra_args: More ``redis-server`` arguments, e.g. ``["--maxmemory", "10mb"]``.
        host: Listen address.
        port: TCP port; a free one by default.
        startup_timeout: Seconds to wait for readiness.
    """

    kind = "redis"
    stop_signal = signal.SIGTERM  # SHUTDOWN: flush the AOF, then exit

    def __init__(
        self,
        *,
        appendonly: bool = False,
        cluster: bool = False,
        extra_args: Sequence[str] = (),
        host: str = LOOPBACK,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(host=host, port=port, startup_timeout=startup_timeout)
        self.binary = find_redis_server()
        self.appendonly = appendonly
        self.cluster = cluster
        self.extra_args = list(extra_args)

    @property
    def uri(self) -> str:
        """``redis://<host>:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def command(self, *args: str | int) -> object:
        """Send one command over a fresh connection and return the decoded reply."""
        return redis_command(self.host, self.port, *args)

    def _pick_port(self) -> int:
        return free_port_pair(10000, self.host) if self.cluster else free_port(self.host)

    def _command(self) -> list[str]:
        command = [
            str(self.binary),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--protected-mode", "no",
            "--save", "",
        ]  # fmt: skip
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        if self.cluster:
            command += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
        return command + self.extra_args

    def _is_ready(self) -> bool:
        try:
            return self.command("PING") == "PONG"
        except RedisReplyError:  # -LOADING while the AOF is replayed
            return False
        except OSError:
            return False


_BAD_NODE_FLAGS = {"handshake", "fail", "fail?", "noaddr"}


class RedisCluster:
    """A throwaway Redis cluster of ``masters`` masters and no replicas, on loopback.

    Slots are split evenly and the nodes introduced with ``CLUSTER MEET``; ``start()``
    returns once every node reports ``cluster_state:ok`` and sees all the others.

    Args:
        masters: Number of master nodes.
        startup_timeout: Seconds to wait for each node and then for the cluster.
    """

    SLOTS = 16384

    def __init__(self, masters: int = 3, *, startup_timeout: float = 30.0) -> None:
        if masters < 1:
            raise ValueError(f"a cluster needs at least one master, got masters={masters!r}")
        self.startup_timeout = startup_timeout
        self.nodes = [
            RedisServer(cluster=True, startup_timeout=startup_timeout) for _ in range(masters)
        ]
        self._formed = False

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, for ``redis.cluster.ClusterNode``."""
        return [(node.host, node.port) for node in self.nodes]

    @property
    def uri(self) -> str:
        """``redis://<host>:<port>`` of the first node, for ``RedisCluster.from_url``."""
        first = self.nodes[0]
        return f"redis://{first.host}:{first.port}"

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    def start(self) -> RedisCluster:
        """Start the nodes, form the cluster on the first start, and wait until it is ok.

        Raises:
            ServerNotInstalledError: ``redis-server`` is missing.
            ServerStartError: A node did not start or the cluster did not converge.
        """
        try:
            for node in self.nodes:
                node.start()
            if not self._formed:
                self._form()
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        count = len(self.nodes)
        for index, node in enumerate(self.nodes):
            node.command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            first = index * self.SLOTS // count
            last = (index + 1) * self.SLOTS // count
            node.command("CLUSTER", "ADDSLOTS", *range(first, last))
        # Every node meets every other: with only a star of MEETs the last node
        # hears of the others through gossip, up to node-timeout / 2 later.
        for index, node in enumerate(self.nodes):
            for other in self.nodes[index + 1 :]:
                node.command("CLUSTER", "MEET", other.host, other.port)
        self._formed = True

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                state = "; ".join(self._node_state(node) for node in self.nodes)
            except (OSError, RedisReplyError) as exc:
                state = repr(exc)
            if all(part.endswith(": ok") for part in state.split("; ")):
                return
            time.sleep(0.05)
        raise ServerStartError(
            f"the Redis cluster did not converge in {self.startup_timeout:.0f}s: {state}"
        )

    def _node_state(self, node: RedisServer) -> str:
        """Return ``"<port>: ok"`` once ``node`` sees a healthy cluster of all masters."""
        info = str(node.command("CLUSTER", "INFO"))
        # CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> ..."
        lines = str(node.command("CLUSTER", "NODES")).strip().splitlines()
        healthy = 0
        for line in lines:
            fields = line.split()
            flags = set(fields[2].split(","))
            if "master" in flags and not flags & _BAD_NODE_FLAGS and fields[7] == "connected":
                healthy += 1
        ok = "cluster_state:ok" in info and healthy == len(lines) == len(self.nodes)
        return f"{node.port}: " + ("ok" if ok else f"{healthy}/{len(self.nodes)} masters healthy")

    def stop(self) -> None:
        """Stop every node gracefully, keeping their data and cluster configuration."""
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def restart(self) -> None:
        """Stop and start every node; the cluster reforms from its saved configuration."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop every node and delete its directory."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        ports = ",".join(str(node._port) for node in self.nodes)
        return f"<RedisCluster {LOOPBACK}:{ports}>"
