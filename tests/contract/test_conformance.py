"""LangGraph's public conformance suite, run against every checkpointer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from tests.contract.backends import BACKENDS


async def test_conformance_reports_every_capability_passed(
    backend: str, request: pytest.FixtureRequest
) -> None:
    async def factory() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        with BACKENDS[backend](request) as saver:
            yield saver

    registered = checkpointer_test(name=f"checkpointkit-{backend}")(factory)
    report = await validate(registered)
    summary = {
        name: (result.detected, result.passed, result.failures)
        for name, result in report.results.items()
    }
    assert set(summary) == {c.value for c in ALL_CAPABILITIES}
    for name, (detected, passed, failures) in summary.items():
        assert detected, f"{name} not detected"
        assert passed, f"{name} failed: {failures}"
