"""The serde benchmark runs and reports sane figures (no timing is asserted)."""

from __future__ import annotations

import pytest
from benchmarks import serde as serde_benchmark
from benchmarks.__main__ import WORKLOADS, main


def test_quick_run_returns_sane_figures(capsys: pytest.CaptureFixture[str]) -> None:
    figures = serde_benchmark.run(quick=True)
    assert figures["messages"] == 200
    assert figures["repeats"] > 0
    results = figures["results"]
    assert {"MsgpackSerializer", "JsonPlusSerializer"} <= results.keys()
    for result in results.values():
        for phase in ("dumps", "loads", "total"):
            median, p95 = result[phase]["median_us"], result[phase]["p95_us"]
            assert 0 < median <= p95
        assert result["bytes"] > 0
    assert figures["speedup"]["MsgpackSerializer"] > 0
    table = capsys.readouterr().out
    assert "| MsgpackSerializer |" in table
    assert "JsonPlusSerializer" in table


def test_conversation_shape() -> None:
    messages = serde_benchmark.build_conversation()
    assert len(messages) == 200
    kinds = {type(m).__name__ for m in messages}
    assert kinds == {"HumanMessage", "AIMessage", "ToolMessage"}
    assert all(m.id for m in messages)
    assert any(getattr(m, "tool_calls", None) for m in messages)
    assert serde_benchmark.build_conversation() == messages  # deterministic


def test_serde_is_a_listed_workload() -> None:
    assert "benchmarks.serde" in WORKLOADS
    with pytest.raises(SystemExit):
        main(["--quick", "no-such-workload"])
