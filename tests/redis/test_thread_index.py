"""The threads index: list_threads and list(None) read about `limit` threads, in the memory order.

Scores are upper bounds of a thread's last write (see `_index`); these tests
build threads whose scores are exact, too high (their latest checkpoints
deleted), unknown (a ``ts`` or id that is not a time) or tied, and check every
``limit`` against the memory checkpointer.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from langgraph.checkpoint.base.id import uuid6

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.redis import RedisCheckpointer
from checkpointkit.checkpointers.redis._index import (
    UNKNOWN,
    id_floor,
    id_score,
    ts_floor,
    ts_score,
)
from checkpointkit.checkpointers.redis._scripts import PAGE, THREAD_INFO
from tests.contract.helpers import checkpoint, config

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def build(savers: list[Any], threads: int = 40) -> None:
    """Put the same threads into every saver: ts out of id order, odd values, deletions."""
    rng = random.Random(7)
    for n in range(threads):
        thread = f"t{n:02d}"
        steps = rng.randint(1, 3)
        parent = None
        for step in range(steps):
            cp = checkpoint({"n": step}, {"n": str(step + 1)})
            kind = n % 8
            cp["ts"] = at(rng.randint(0, 50))  # update times unrelated to put order
            if kind == 1:
                cp["ts"] = "not a time"  # scores UNKNOWN
            elif kind == 2:
                cp["id"] = f"cp-{n:02d}-{step}"  # not a uuid6: scores UNKNOWN
            elif kind == 3:
                cp["ts"] = at(20)  # ties, broken by thread id
            metadata = {"group": n % 3, "run_id": f"run-{n}-{step}"}
            for saver in savers:
                saver.put(config(thread, checkpoint_id=parent), cp, metadata, {"n": str(step + 1)})
            parent = cp["id"]
        if n % 8 == 4:  # a subgraph checkpoint, newer than the root ones
            cp = checkpoint({"s": 1}, {"s": "1"})
            for saver in savers:
                saver.put(config(thread, ns="sub"), cp, {"group": 0}, {"s": "1"})
        if n % 8 == 5:  # only a subgraph: listed by list(None), not by list_threads
            cp = checkpoint({"s": 1}, {"s": "1"})
            for saver in savers:
                saver.put(config(f"sub-only-{n}", ns="sub"), cp, {}, {"s": "1"})
    # The latest checkpoints of some threads go: their scores are now too high.
    doomed = [f"run-{n}-{s}" for n in range(0, threads, 6) for s in (1, 2)]
    for saver in savers:
        saver.delete_for_runs(doomed)


@pytest.fixture
def pair(saver: RedisCheckpointer) -> tuple[RedisCheckpointer, MemoryCheckpointer]:
    memory = MemoryCheckpointer()
    build([saver, memory])
    return saver, memory


def listed(tuples: Any) -> list[tuple[str, str, str]]:
    return [
        (c["thread_id"], c["checkpoint_ns"], c["checkpoint_id"])
        for c in (t.config["configurable"] for t in tuples)
    ]


def test_list_threads_matches_memory_at_every_limit(
    pair: tuple[RedisCheckpointer, MemoryCheckpointer],
) -> None:
    saver, memory = pair
    everything = memory.list_threads()
    assert len(everything) > 30
    assert saver.list_threads() == everything
    for limit in range(len(everything) + 2):
        assert saver.list_threads(limit=limit) == everything[:limit], limit
    for group in range(3):
        wanted = {"group": group}
        expected = memory.list_threads(filter=wanted)
        for limit in (1, 2, 5, None):
            assert saver.list_threads(filter=wanted, limit=limit) == expected[:limit]


def test_list_none_matches_memory_at_every_limit(
    pair: tuple[RedisCheckpointer, MemoryCheckpointer],
) -> None:
    saver, memory = pair
    everything = listed(memory.list(None))
    assert listed(saver.list(None)) == everything
    for limit in [*range(1, 12), 30, len(everything)]:
        assert listed(saver.list(None, limit=limit)) == everything[:limit], limit
    before = config("t00", checkpoint_id=everything[len(everything) // 2][2])
    assert listed(saver.list(None, before=before, limit=5)) == listed(
        memory.list(None, before=before, limit=5)
    )
    wanted = {"group": 1}
    assert listed(saver.list(None, filter=wanted, limit=4)) == listed(
        memory.list(None, filter=wanted, limit=4)
    )


def threads_read(saver: RedisCheckpointer, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the threads each listing script is run on (a spy on the real calls)."""
    counts = {THREAD_INFO.name: 0, PAGE.name: 0}
    real = saver._eval_many

    def spy(script: Any, calls: Any) -> Any:
        if script.name in counts:
            counts[script.name] += len(calls)
        return real(script, calls)

    monkeypatch.setattr(saver, "_eval_many", spy)
    return counts


def test_a_page_reads_about_limit_threads(
    saver: RedisCheckpointer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(300):
        cp = checkpoint({"n": n}, {"n": "1"})
        saver.put(config(f"many-{n:03d}"), cp, {"even": n % 2 == 0}, {"n": "1"})
    counts = threads_read(saver, monkeypatch)
    infos = saver.list_threads(limit=5)
    assert [i.thread_id for i in infos] == [f"many-{n:03d}" for n in range(299, 294, -1)]
    assert counts[THREAD_INFO.name] < 30
    assert [i.thread_id for i in saver.list_threads(filter={"even": True}, limit=3)] == [
        "many-298", "many-296", "many-294"
    ]  # fmt: skip
    assert counts[THREAD_INFO.name] < 80
    page = listed(saver.list(None, limit=5))
    assert [t for t, _, _ in page] == [f"many-{n:03d}" for n in range(299, 294, -1)]
    assert counts[PAGE.name] < 30
    assert len(saver.list_threads()) == 300


def test_scores_read_times_and_nothing_else() -> None:
    now = datetime.now(timezone.utc)
    us = (now - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    assert ts_score(now.isoformat()) == us
    assert ts_score(now.replace(microsecond=0).isoformat()) == us - now.microsecond
    for odd in (
        "",
        "yesterday",
        now.isoformat().replace("+00:00", "Z"),
        now.replace(tzinfo=timezone(timedelta(hours=1))).isoformat(),
        now.replace(tzinfo=None).isoformat(),
    ):
        assert ts_score(odd) == UNKNOWN, odd
    made = uuid6()
    assert abs(id_score(str(made)) - us) < 5_000_000
    for odd in ("", "1", str(made).upper(), "1ef4f797-8335-7081-8000-000000000000"):
        assert id_score(odd) == UNKNOWN, odd
    # The floors sit just above every value of a score, and below the next one.
    score = ts_score(now.isoformat())
    assert ts_floor(score) == now.isoformat()
    assert ts_floor(score - 1) < now.isoformat()
    assert ts_floor(UNKNOWN) is None
    assert id_floor(UNKNOWN) is None
    floor = id_floor(id_score(str(made)))
    assert floor is not None
    assert str(made) < floor
    later = str(uuid6())
    while id_score(later) == id_score(str(made)):
        later = str(uuid6())
    assert floor <= later


def test_an_index_of_the_first_layout_still_lists_right(saver: RedisCheckpointer, raw: Any) -> None:
    """Scores written before they were times (announcement counters) are read first."""
    for n in range(20):
        cp = checkpoint({"n": n}, {"n": "1"})
        saver.put(config(f"old-{n:02d}"), cp, {}, {"n": "1"})
    for n in range(20):  # as the first layout left them: 1 or 2 announcements
        raw.zadd(saver._layout.bucket(f"old-{n:02d}"), {f"old-{n:02d}": 1 + n % 2})
    assert [i.thread_id for i in saver.list_threads(limit=3)] == ["old-19", "old-18", "old-17"]
    assert [t for t, _, _ in listed(saver.list(None, limit=2))] == ["old-19", "old-18"]
    # A put gives the thread a time again.
    cp = checkpoint({"n": 99}, {"n": "2"})
    saver.put(config("old-00"), cp, {}, {"n": "2"})
    score = max(ts_score(cp["ts"]), id_score(cp["id"]))
    assert raw.zscore(saver._layout.bucket("old-00"), "old-00") == score
    assert saver.list_threads(limit=1)[0].thread_id == "old-00"
