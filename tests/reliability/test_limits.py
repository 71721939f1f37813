"""Limits: 50 MB state values, 100k checkpoints in one thread, 10k threads, on every backend.

The data is built with puts from several OS threads at once (ids chosen in
advance, so one thread's chain stays linear). The bounds are generous for a
loaded 2-core machine, yet far below what reading a whole thread (or every
thread) for one page would cost: a page of ``list`` or ``list_threads`` is
timed (median of a few calls) and its Python allocations measured
(``tracemalloc`` peak), which is where an O(n) page or a quadratic scan shows.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import statistics
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest
from langgraph.checkpoint.base.id import uuid6

from tests.contract.helpers import checkpoint, config
from tests.reliability._backends import saver_from_spec, spec_for

BIG = 50 * 1024 * 1024
CHECKPOINTS = 100_000
THREADS = 10_000
BUILDERS = 4  # OS threads putting at once
PAGE_SECONDS = 0.5  # a page: a few ms normally; reading 100k rows takes seconds
PAGE_BYTES = 8 * 1024 * 1024  # a page's peak allocations; 100k rows need far more
ALL_THREADS_SECONDS = 15.0  # list_threads() of 10k threads, whole


def timed(call: Callable[[], Any], repeat: int = 5) -> tuple[Any, float, int]:
    """Run `call` `repeat` times; return its result, the median seconds and the peak bytes."""
    call()  # warm up: connections, prepared statements, caches of the first use
    seconds = []
    peak = 0
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return result, statistics.median(seconds), peak


def assert_paged(what: str, seconds: float, peak: int) -> None:
    assert seconds < PAGE_SECONDS, f"{what} took {seconds:.3f}s (bound {PAGE_SECONDS}s)"
    assert peak < PAGE_BYTES, f"{what} allocated {peak / 1e6:.1f} MB (bound {PAGE_BYTES / 1e6} MB)"


def in_parallel(count: int, put: Callable[[int], None]) -> None:
    """Call ``put(i)`` for every i < `count`, split over `BUILDERS` OS threads."""
    failures: list[BaseException] = []

    def build(part: Sequence[int]) -> None:
        try:
            for i in part:
                put(i)
        except BaseException as exc:
            failures.append(exc)

    workers = [
        threading.Thread(target=build, args=(range(k, count, BUILDERS),)) for k in range(BUILDERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]


def ids_of(tuples: Any) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


@pytest.fixture
def spec(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    return spec_for(backend, request)


@pytest.fixture
def store(spec: dict[str, Any]) -> Iterator[Any]:
    with saver_from_spec(spec) as saver:
        yield saver


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_50_mb_state_values(
    store: Any, spec: dict[str, Any], backend: str, tally: Counter[str]
) -> None:
    saver = store
    big = os.urandom(BIG)
    text = "é" * (BIG // 2)  # 50 MB of UTF-8
    digest = hashlib.sha256(big).digest()
    versions = {"blob": "1", "text": "1"}
    first = saver.put(
        config("big"), checkpoint({"blob": big, "text": text}, versions), {}, versions
    )
    saver.put_writes(first, [("blob", big)], "task")
    # The next step changes another channel: the 50 MB are stored once, for both.
    cp = checkpoint({"blob": big, "text": text, "n": 1}, {**versions, "n": "2"})
    second = saver.put(config("big", checkpoint_id=first["configurable"]["checkpoint_id"]), cp,
                       {}, {"n": "2"})  # fmt: skip
    with ExitStack() as stack:
        readers = [saver]
        if backend != "memory":  # and from a fresh saver, with no cache of this one's
            readers.append(stack.enter_context(saver_from_spec(spec)))
        for reader in readers:
            for stored in (first, second):
                values = reader.get_tuple(stored).checkpoint["channel_values"]
                assert hashlib.sha256(values["blob"]).digest() == digest
                assert values["text"] == text
            [(_, channel, value)] = reader.get_tuple(first).pending_writes
            assert channel == "blob"
            assert hashlib.sha256(value).digest() == digest
            listed = list(reader.list(config("big")))
            assert [t.checkpoint["channel_values"].get("n") for t in listed] == [1, None]
    tally["acknowledged writes checked"] += 3


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_100k_checkpoints_in_one_thread_stay_paged(store: Any, tally: Counter[str]) -> None:
    saver = store
    ids = sorted(str(uuid6(clock_seq=i)) for i in range(CHECKPOINTS))
    assert len(set(ids)) == CHECKPOINTS

    def put(i: int) -> None:
        version = f"{i + 1:032}.0"
        cp = checkpoint({"step": i}, {"step": version})
        cp["id"] = ids[i]
        parent = ids[i - 1] if i else None
        saver.put(config("long", checkpoint_id=parent), cp, {"step": i}, {"step": version})

    in_parallel(CHECKPOINTS, put)
    newest = ids[::-1]
    thread = config("long")

    page, seconds, peak = timed(lambda: list(saver.list(thread, limit=10)))
    assert ids_of(page) == newest[:10]
    assert [t.checkpoint["channel_values"]["step"] for t in page] == list(range(99_999, 99_989, -1))
    assert_paged("list(limit=10) of 100k checkpoints", seconds, peak)

    # Without a limit, listing is lazy: the first ten cost a page, not the thread.
    page, seconds, peak = timed(lambda: list(itertools.islice(saver.list(thread), 10)))
    assert ids_of(page) == newest[:10]
    assert_paged("the first 10 of list() of 100k checkpoints", seconds, peak)

    middle = config("long", checkpoint_id=ids[50_000])
    page, seconds, peak = timed(lambda: list(saver.list(thread, before=middle, limit=10)))
    assert ids_of(page) == ids[49_990:50_000][::-1]
    assert_paged("list(before=the middle, limit=10)", seconds, peak)

    latest, seconds, peak = timed(lambda: saver.get_tuple(thread))
    assert latest.checkpoint["id"] == ids[-1]
    assert latest.parent_config["configurable"]["checkpoint_id"] == ids[-2]
    assert_paged("get_tuple of the latest of 100k", seconds, peak)

    infos, seconds, _ = timed(lambda: saver.list_threads(), repeat=3)
    assert [(i.thread_id, i.checkpoint_count) for i in infos] == [("long", CHECKPOINTS)]
    assert seconds < ALL_THREADS_SECONDS
    tally["acknowledged writes checked"] += CHECKPOINTS


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_10k_threads_list_threads_stays_fast(
    store: Any, backend: str, tally: Counter[str], request: pytest.FixtureRequest
) -> None:
    saver = store

    def put(i: int) -> None:
        cp = checkpoint({"n": i}, {"n": "1"})
        saver.put(config(f"thread-{i:05}"), cp, {"group": i % 10, "n": i}, {"n": "1"})

    in_parallel(THREADS, put)

    infos, seconds, peak = timed(lambda: saver.list_threads(limit=10))
    assert len(infos) == 10
    assert_paged("list_threads(limit=10) of 10k threads", seconds, peak)
    assert all(i.checkpoint_count == 1 for i in infos)

    infos, seconds, peak = timed(lambda: saver.list_threads(filter={"group": 3}, limit=10))
    assert len(infos) == 10
    assert all(i.metadata["group"] == 3 for i in infos)
    assert_paged("list_threads(filter, limit=10) of 10k threads", seconds, peak)

    page, seconds, peak = timed(lambda: list(saver.list(None, limit=10)))
    assert len(page) == 10
    assert_paged("list(None, limit=10) across 10k threads", seconds, peak)

    everything, seconds, _ = timed(lambda: saver.list_threads(), repeat=3)
    assert sorted(i.thread_id for i in everything) == [f"thread-{i:05}" for i in range(THREADS)]
    updated = [i.updated_at for i in everything]
    assert updated == sorted(updated, reverse=True), "list_threads is not newest first"
    assert seconds < ALL_THREADS_SECONDS, f"list_threads() of 10k threads took {seconds:.1f}s"
    tally["acknowledged writes checked"] += THREADS
