"""The benchmark code itself runs (quick profile) and checks what it measures.

No timing is asserted here: speed targets are met in `make bench`, not in
unit tests. This keeps the workloads from rotting as the savers change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmarks import __main__ as bench_main
from benchmarks import api, chat, fanout, forks


@pytest.mark.slow
def test_quick_profile_runs_every_workload_on_memory_and_sqlite(tmp_path: Path) -> None:
    chat_figures = chat.run(quick=True)
    assert set(chat_figures) >= {"checkpointkit memory", "langgraph InMemorySaver"}
    ours = chat_figures["checkpointkit memory"]
    assert ours["bytes"][20] > ours["bytes"][5] > 0
    assert chat_figures["langgraph InMemorySaver"]["bytes"][20] > ours["bytes"][20]
    if "checkpointkit postgres" in chat_figures:  # the one-letter run, on PostgreSQL only
        assert chat_figures["checkpointkit postgres"]["bytes_one_letter_text"] > 0
        assert chat_figures["langgraph PostgresSaver"]["bytes_one_letter_text"] > 0
    assert "bytes_one_letter_text" not in ours

    api_figures = api.run(quick=True)
    ours_side_by_side = api_figures.pop("checkpointkit")
    floors = api_figures.pop("floors")
    assert set(floors) == {"postgres", "redis"} & set(ours_side_by_side)
    assert all(us > 0 for row in floors.values() for us in row.values())
    assert {"memory", "sqlite"} <= set(ours_side_by_side)
    assert {"memory", "sqlite"} <= set(api_figures)
    for family in api_figures.values():
        for name in ("checkpointkit", "langgraph"):
            assert all(family[name][op] > 0 for op in ("put", "put_writes", "get_tuple"))

    fan = fanout.run(quick=True)
    assert {"memory", "sqlite"} <= set(fan)
    assert all(rate > 0 for pair in fan.values() for rate in pair.values())

    fork = forks.run(quick=True)
    assert {"memory", "sqlite"} <= set(fork)


def test_report_is_written_with_machine_and_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["benchmarks"])
    assert bench_main.main(["--quick", "--output", str(tmp_path), "chat"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "Machine:" in report
    assert "Versions:" in report
    assert "## chat" in report
    assert (tmp_path / "figures.json").stat().st_size > 0
    assert (tmp_path / "chat.png").stat().st_size > 1000
