"""Make sure the PostgreSQL and Redis servers the tests start are installed.

Run by ``make test`` just before pytest. The test harness starts throwaway
servers from the local binaries (``tests/harness/servers.py``) unless
``CHECKPOINTKIT_TEST_POSTGRES_URI`` / ``CHECKPOINTKIT_TEST_REDIS_URL`` /
``CHECKPOINTKIT_TEST_REDIS_CLUSTER_URL`` point at running servers; this checks
for those binaries with the harness's own lookup and, when some are missing,
installs them with apt-get if running as root (non-interactively), or prints
the command to run and exits 1. Prints one line when all is present; takes a
few milliseconds then.

Usage: python tools/ensure_servers.py [--check]   (--check: never install)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Needs the repository root on sys.path (above): the harness owns the binary lookup.
from tests.harness.servers import (
    POSTGRES_PACKAGE,
    REDIS_PACKAGE,
    ServerNotInstalledError,
    find_postgres_bindir,
    find_redis_server,
)

ENV_POSTGRES = "CHECKPOINTKIT_TEST_POSTGRES_URI"
ENV_REDIS = "CHECKPOINTKIT_TEST_REDIS_URL"
ENV_REDIS_CLUSTER = "CHECKPOINTKIT_TEST_REDIS_CLUSTER_URL"

Finder = Callable[[], Path]


def _needed() -> dict[str, tuple[str, Finder]]:
    """Map a server name to (apt package, binary lookup) for each server the tests will start."""
    needed: dict[str, tuple[str, Finder]] = {}
    if not os.environ.get(ENV_POSTGRES):
        needed["postgres"] = (POSTGRES_PACKAGE, find_postgres_bindir)
    if not (os.environ.get(ENV_REDIS) and os.environ.get(ENV_REDIS_CLUSTER)):
        needed["redis"] = (REDIS_PACKAGE, find_redis_server)
    return needed


def _missing(needed: dict[str, tuple[str, Finder]]) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, Path] = {}
    packages: list[str] = []
    for name, (package, find) in needed.items():
        try:
            found[name] = find()
        except ServerNotInstalledError:
            packages.append(package)
    return found, packages


def _apt_install(packages: Sequence[str]) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        print("ensure_servers: running", " ".join(command), flush=True)
        if subprocess.run(command, env=env, check=False).returncode != 0:
            return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Check for (and maybe install) the server binaries; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, never install")
    args = parser.parse_args(argv)

    needed = _needed()
    found, packages = _missing(needed)
    if packages:
        can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
        if args.check or not can_install:
            sudo = "" if os.geteuid() == 0 else "sudo "
            print(
                f"ensure_servers: missing {', '.join(packages)}; the tests start their own "
                f"servers from these binaries. Install them with:\n"
                f"    {sudo}apt-get install -y {' '.join(packages)}\n"
                f"or point the tests at running servers with {ENV_POSTGRES} / {ENV_REDIS} / "
                f"{ENV_REDIS_CLUSTER}.",
                file=sys.stderr,
            )
            return 1
        if not _apt_install(packages):
            print("ensure_servers: apt-get failed (see above)", file=sys.stderr)
            return 1
        found, packages = _missing(needed)
        if packages:
            print(
                f"ensure_servers: still missing {', '.join(packages)} after apt-get install",
                file=sys.stderr,
            )
            return 1

    parts = [f"{name} in {path}" for name, path in found.items()]
    parts += [f"{name} from ${env}" for name, env in _overrides() if name not in found]
    print(f"ensure_servers: ok ({'; '.join(parts)})")
    return 0


def _overrides() -> list[tuple[str, str]]:
    pairs = [("postgres", ENV_POSTGRES), ("redis", ENV_REDIS)]
    return [(name, env) for name, env in pairs if os.environ.get(env)]


if __name__ == "__main__":
    sys.exit(main())
