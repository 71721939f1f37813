"""Concurrency: 32 workers on 32 threads, and 32 workers on one thread, on every backend.

Each worker is an OS thread sharing one saver, writing a chain of checkpoints
(a growing list stored as deltas, a counter, two pending writes per step)
while a reader lists the same data. Afterwards nothing acknowledged is lost or
duplicated, every checkpoint reads back equal with the parent its writer
gave, the history is ordered newest first, and no listing made during the
writes errored, repeated a checkpoint or showed one out of order.

With ``single_writer=True``, 32 workers on one thread race to extend it: each
put builds on the newest checkpoint the worker read, a refused one
(`WriteConflictError`) re-reads and retries. Exactly one linear history
survives, made of the acknowledged puts only; nothing of a refused put is
visible.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from checkpointkit.errors import WriteConflictError
from tests.contract.helpers import checkpoint, config
from tests.reliability._backends import open_saver

WORKERS = 32
STEPS = 6


def write_chain(saver: Any, thread_id: str, worker: int, start: threading.Barrier) -> list[Any]:
    """Put `STEPS` chained checkpoints (with writes) into `thread_id`; return what was stored."""
    versions: dict[str, Any] = {}
    parent: str | None = None
    items: list[str] = []
    stored = []
    start.wait()
    for step in range(STEPS):
        items = [*items, f"w{worker} item {step}"]
        values = {"items": items, "n": step, "worker": worker}
        for channel in values:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = checkpoint(values, dict(versions))
        meta = {"source": "loop", "step": step, "worker": worker}
        done = saver.put(config(thread_id, checkpoint_id=parent), cp, meta, dict(versions))
        checkpoint_id = done["configurable"]["checkpoint_id"]
        assert checkpoint_id == cp["id"]
        saver.put_writes(done, [("n", step), ("log", f"w{worker}/{step}")], f"task-{step}")
        stored.append((checkpoint_id, parent, values))
        parent = checkpoint_id
    return stored


def check_listing(tuples: list[Any]) -> None:
    """A listing made during the writes: newest first, no repeats, each one whole."""
    ids = [t.config["configurable"]["checkpoint_id"] for t in tuples]
    assert len(set(ids)) == len(ids), "a listing repeated a checkpoint"
    assert ids == sorted(ids, reverse=True), "a listing is out of order"
    for tup in tuples:
        values = tup.checkpoint["channel_values"]
        assert len(values["items"]) == values["n"] + 1
        assert tup.metadata["worker"] == values["worker"]


def run_workers(
    work: Callable[[int, threading.Barrier], Any], listed: Callable[[], Any]
) -> dict[int, Any]:
    """Run `WORKERS` writers (`work(worker, start)`) and one lister until the writers finish."""
    start = threading.Barrier(WORKERS + 1)
    results: dict[int, Any] = {}
    failures: list[BaseException] = []
    finished = threading.Event()
    listings = 0

    def writer(worker: int) -> None:
        try:
            results[worker] = work(worker, start)
        except BaseException as exc:
            failures.append(exc)
            start.abort()

    def lister() -> None:
        nonlocal listings
        try:
            start.wait()
            while not finished.is_set() or listings == 0:
                check_listing(list(listed()))
                listings += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WORKERS)]
    readers = [threading.Thread(target=lister)]
    for thread in [*threads, *readers]:
        thread.start()
    for thread in threads:
        thread.join(120)
    finished.set()
    for thread in readers:
        thread.join(60)
    if failures:
        raise failures[0]
    assert listings > 0
    return results


def check_stored(saver: Any, thread_id: str, stored: list[Any]) -> None:
    for checkpoint_id, parent, values in stored:
        tup = saver.get_tuple(config(thread_id, checkpoint_id=checkpoint_id))
        assert tup is not None, f"checkpoint {checkpoint_id} of {thread_id} is lost"
        assert tup.checkpoint["channel_values"] == values
        got_parent = (
            tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        )
        assert got_parent == parent
        step = values["n"]
        assert sorted(w[1:] for w in tup.pending_writes) == sorted(
            [("n", step), ("log", f"w{values['worker']}/{step}")]
        )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_32_workers_on_separate_threads(saver: Any, backend: str, tally: Counter[str]) -> None:
    results = run_workers(
        lambda w, start: write_chain(saver, f"worker-{w}", w, start),
        lambda: saver.list(None, limit=40),
    )
    assert sorted(results) == list(range(WORKERS))
    for worker, stored in results.items():
        thread_id = f"worker-{worker}"
        check_stored(saver, thread_id, stored)
        history = [t.config["configurable"]["checkpoint_id"] for t in saver.list(config(thread_id))]
        assert history == [s[0] for s in stored][::-1]
    everything = list(saver.list(None))
    check_listing(everything)
    assert len(everything) == WORKERS * STEPS
    threads = saver.list_threads()
    assert sorted(t.thread_id for t in threads) == sorted(f"worker-{w}" for w in range(WORKERS))
    assert {t.checkpoint_count for t in threads} == {STEPS}
    tally["acknowledged writes checked"] += 2 * WORKERS * STEPS


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_32_workers_on_one_thread(saver: Any, backend: str, tally: Counter[str]) -> None:
    shared = config("shared")
    results = run_workers(
        lambda w, start: write_chain(saver, "shared", w, start), lambda: saver.list(shared)
    )
    stored = [s for chain in results.values() for s in chain]
    assert len(stored) == WORKERS * STEPS
    check_stored(saver, "shared", stored)
    history = list(saver.list(shared))
    check_listing(history)
    ids = [t.config["configurable"]["checkpoint_id"] for t in history]
    assert sorted(ids) == sorted(s[0] for s in stored), "lost or extra checkpoints"
    latest = saver.get_tuple(shared)
    assert latest is not None
    assert latest.config["configurable"]["checkpoint_id"] == max(ids)
    # each worker's chain is intact inside the shared history
    for worker, chain in results.items():
        mine = [t for t in history if t.metadata["worker"] == worker]
        assert [t.config["configurable"]["checkpoint_id"] for t in mine] == [s[0] for s in chain][
            ::-1
        ]
    [info] = saver.list_threads()
    assert info.thread_id == "shared"
    assert info.checkpoint_count == WORKERS * STEPS
    tally["acknowledged writes checked"] += 2 * WORKERS * STEPS


def guarded_writer(
    saver: Any, worker: int, start: threading.Barrier
) -> tuple[list[Any], list[str]]:
    """Try `STEPS` puts on thread ``guarded``, each on the newest checkpoint read.

    Returns:
        The acknowledged puts (id, parent id, values) and the ids of refused ones.
    """
    acked: list[Any] = []
    refused: list[str] = []
    latest = None  # all workers start together, on an empty thread
    start.wait()
    for step in range(STEPS):
        parent = latest.config["configurable"]["checkpoint_id"] if latest else None
        items = [*latest.checkpoint["channel_values"]["items"]] if latest else []
        versions = dict(latest.checkpoint["channel_versions"]) if latest else {}
        items.append(f"w{worker} item {step}")
        values = {"items": items, "n": len(items) - 1, "worker": worker}
        for channel in values:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = checkpoint(values, dict(versions))
        meta = {"source": "loop", "step": len(items), "worker": worker}
        conflict: WriteConflictError | None = None
        try:
            done = saver.put(config("guarded", checkpoint_id=parent), cp, meta, dict(versions))
        except WriteConflictError as exc:
            conflict = exc
        if conflict is not None:
            assert (conflict.thread_id, conflict.parent_id) == ("guarded", parent)
            assert conflict.newest_id is not None
            assert parent is None or conflict.newest_id > parent
            refused.append(cp["id"])
            latest = saver.get_tuple(config("guarded"))  # re-read, and retry on it
            continue
        saver.put_writes(done, [("n", values["n"]), ("log", f"w{worker}/{step}")], f"task-{step}")
        acked.append((cp["id"], parent, values))
        latest = saver.get_tuple(done)
    return acked, refused


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_32_guarded_workers_on_one_thread_leave_one_linear_history(
    backend: str, request: pytest.FixtureRequest, tally: Counter[str]
) -> None:
    with open_saver(backend, request, single_writer=True) as saver:
        guarded = config("guarded")
        results = run_workers(
            lambda w, start: guarded_writer(saver, w, start), lambda: saver.list(guarded)
        )
        acked = {s[0]: s for chain, _ in results.values() for s in chain}
        refused = [cid for _, lost in results.values() for cid in lost]
        assert len(acked) + len(refused) == WORKERS * STEPS
        # All start on an empty thread: one first put wins, every other is refused.
        assert len(refused) >= WORKERS - 1
        history = list(saver.list(guarded))
        check_listing(history)
        assert sorted(t.checkpoint["id"] for t in history) == sorted(acked), "not the acked puts"
        for newer, older in itertools.pairwise(history):
            assert newer.parent_config is not None
            assert newer.parent_config["configurable"]["checkpoint_id"] == older.checkpoint["id"]
            assert (
                newer.checkpoint["channel_values"]["items"][:-1]
                == (older.checkpoint["channel_values"]["items"])
            ), "the history forked"
        assert history[-1].parent_config is None
        for tup in history:
            _, parent, values = acked[tup.checkpoint["id"]]
            assert tup.checkpoint["channel_values"] == values
            got = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
            assert got == parent
            assert sorted(w[1] for w in tup.pending_writes) == ["log", "n"]
        for checkpoint_id in refused:  # nothing half-written
            assert saver.get_tuple(config("guarded", checkpoint_id=checkpoint_id)) is None
        [info] = saver.list_threads()
        assert info.checkpoint_count == len(acked)
    tally["acknowledged writes checked"] += 2 * len(acked)
