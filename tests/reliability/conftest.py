"""Fixtures of the reliability suite: a saver per backend, and the session's tally.

Every reliability test adds what it did to `TALLY` (crashes survived, server
faults recovered, hostile inputs tried, acknowledged writes checked, data
lost); `pytest_terminal_summary` prints the totals at the end of the session,
for the README's reliability section.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability._backends import BACKENDS, open_saver

# Insertion order is the order of the printed summary.
TALLY: Counter[str] = Counter(
    {
        "crashes survived": 0,
        "faults recovered": 0,
        "inputs tried": 0,
        "acknowledged writes checked": 0,
        "data lost": 0,
    }
)


@pytest.fixture
def tally() -> Counter[str]:
    """Return the session's tally; tests add to its counters."""
    return TALLY


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Name one backend: ``memory``, ``sqlite``, ``postgres`` or ``redis``."""
    return str(request.param)


@pytest.fixture
def saver(backend: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Yield a fresh, isolated sync saver of `backend`."""
    with open_saver(backend, request) as opened:
        yield opened


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reliability totals when any reliability test ran."""
    if not any(TALLY.values()):
        return
    terminalreporter.section("checkpointkit reliability summary")
    for name, count in TALLY.items():
        terminalreporter.write_line(f"{name:>30}: {count}")
