"""Server faults: PostgreSQL and Redis stopped and restarted under a running graph.

Each test runs a private throwaway server (the harness's ``postgres_factory``
with ``synchronous_commit=on``, ``redis_factory`` with ``appendfsync always``),
never a shared one, and keeps ONE saver object open throughout. While a
LangGraph run counts steps (every checkpoint stored before the next step) and
a raw writer extends a chain of checkpoints, the server is

* restarted gracefully: operations in flight are retried on fresh
  connections and the run finishes as if nothing happened, or fails typed;
* killed (SIGKILL) and kept down past the saver's retry window: every call
  fails with `BackendUnavailableError` (nothing untyped), within bounded time;
  when the server is back the same saver works again by itself, the run
  resumes from its last checkpoint with ``invoke(None, config)`` and counts
  every step exactly once, and every put that was acknowledged is there.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.errors import BackendUnavailableError, CheckpointKitError
from tests.contract.helpers import checkpoint, config

SERVERS = ("postgres", "redis")
GRAPH = {"configurable": {"thread_id": "graph"}, "recursion_limit": 10**9}
STEP_SECONDS = 0.005
# A call during an outage must fail within this: the retry window plus a margin.
FAIL_WITHIN = 30.0
# A saver must work again this soon after its server is back. Not at once: a
# connection pool retries connecting with exponential backoff (psycopg_pool
# waits up to 2x longer after each failed attempt of the outage).
RECOVER_WITHIN = 60.0


class Count(TypedDict):
    count: int
    log: Annotated[list[int], operator.add]


def counting_graph(saver: Any, stop_at: int, progress: threading.Event | None = None) -> Any:
    """A graph whose node appends its count to ``log`` until the count reaches `stop_at`."""

    def work(state: Count) -> dict[str, Any]:
        time.sleep(STEP_SECONDS)
        if progress is not None and state["count"] >= 5:
            progress.set()
        return {"count": state["count"] + 1, "log": [state["count"]]}

    builder = StateGraph(Count)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_conditional_edges("work", lambda s: END if s["count"] >= stop_at else "work")
    return builder.compile(checkpointer=saver)


@dataclass
class Private:
    """A private server and how to open a saver on it."""

    server: Any
    open: Callable[[], AbstractContextManager[Any]]


@pytest.fixture(params=SERVERS)
def private(request: pytest.FixtureRequest) -> Private:
    """Start a private, durable server of the backend; return it with a saver opener."""
    if request.param == "postgres":
        from checkpointkit.checkpointers.postgres import PostgresCheckpointer

        server = request.getfixturevalue("postgres_factory")()
        uri = server.uri
        # Short pool wait and retry window: an outage shows within seconds.
        return Private(
            server,
            lambda: PostgresCheckpointer.from_conn_string(
                uri, max_size=4, timeout=2.0, retry_timeout=3.0
            ),
        )
    from checkpointkit.checkpointers.redis import RedisCheckpointer

    server = request.getfixturevalue("redis_factory")(appendonly=True)
    url = server.uri
    return Private(server, lambda: RedisCheckpointer.from_conn_string(url, prefix="faults:"))


@dataclass
class Outcome:
    """What a background call returned or raised."""

    value: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def in_background(call: Callable[[], Any]) -> tuple[threading.Thread, Outcome]:
    outcome = Outcome()

    def run() -> None:
        try:
            outcome.value = call()
        except BaseException as exc:
            outcome.error = exc
        finally:
            outcome.done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


class RawWriter:
    """Extend thread ``raw`` with put + put_writes until stopped; record what was acknowledged.

    A typed failure (the server is away) is recorded and the writer goes on,
    building on its last acknowledged checkpoint; an untyped one stops it.
    """

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.acked: list[tuple[str, int]] = []
        self.acked_after: dict[str, int] = {}  # event name -> len(acked) when it happened
        self.typed_errors: list[CheckpointKitError] = []
        self.untyped: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RawWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(RECOVER_WITHIN)
        assert not self._thread.is_alive(), "the raw writer hangs"

    def mark(self, event: str) -> None:
        self.acked_after[event] = len(self.acked)

    def _run(self) -> None:
        parent: str | None = None
        versions: dict[str, Any] = {}
        step = 0
        while not self._stop.is_set():
            values = {"step": step, "items": [f"item {i}" for i in range(step % 50)]}
            new = {ch: self.saver.get_next_version(versions.get(ch), None) for ch in values}
            cp = checkpoint(values, {**versions, **new})
            try:
                stored = self.saver.put(
                    config("raw", checkpoint_id=parent), cp, {"step": step}, new
                )
                self.saver.put_writes(stored, [("step", step)], f"task-{step}")
            except CheckpointKitError as exc:
                self.typed_errors.append(exc)
                time.sleep(0.05)
                continue
            except BaseException as exc:
                self.untyped = exc
                return
            parent = stored["configurable"]["checkpoint_id"]
            versions.update(new)
            self.acked.append((cp["id"], step))
            step += 1
            time.sleep(0.002)

    def check(self, saver: Any, tally: Counter[str]) -> int:
        """Check every acknowledged put reads back whole; return how many there were."""
        assert self.untyped is None, f"untyped error: {self.untyped!r}"
        for checkpoint_id, step in self.acked:
            tup = saver.get_tuple(config("raw", checkpoint_id=checkpoint_id))
            if tup is None:
                tally["data lost"] += 1
            assert tup is not None, f"acknowledged checkpoint of step {step} is lost"
            assert tup.checkpoint["channel_values"]["step"] == step
            assert len(tup.checkpoint["channel_values"]["items"]) == step % 50
            assert tup.pending_writes == [(f"task-{step}", "step", step)]
        return len(self.acked)


def check_run(saver: Any, stop_at: int) -> int:
    """Check the graph's state counts every step once; return its count."""
    state = counting_graph(saver, stop_at).get_state(GRAPH)
    count = state.values.get("count", 0)
    assert state.values.get("log", []) == list(range(count)), "a step was lost or repeated"
    return int(count)


def eventually(call: Callable[[], Any]) -> Any:
    """Return what `call` returns once the server is reachable; until then it must fail typed."""
    deadline = time.monotonic() + RECOVER_WITHIN
    while True:
        try:
            return call()
        except BackendUnavailableError:
            assert time.monotonic() < deadline, f"not recovered in {RECOVER_WITHIN}s"
            time.sleep(0.2)


def wait_for(event: threading.Event, outcome: Outcome, what: str) -> None:
    while not event.wait(0.05):
        if outcome.done.is_set():
            raise AssertionError(f"{what} ended before making progress: {outcome.error!r}")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_restart_mid_run_is_retried_or_fails_typed(private: Private, tally: Counter[str]) -> None:
    stop_at = 400
    with private.open() as saver:
        progress = threading.Event()
        graph = counting_graph(saver, stop_at, progress)
        with RawWriter(saver) as writer:
            runner, outcome = in_background(
                lambda: graph.invoke({"count": 0, "log": []}, GRAPH, durability="sync")
            )
            wait_for(progress, outcome, "the graph run")
            writer.mark("restart")
            private.server.restart()
            runner.join(FAIL_WITHIN * 4)
            assert outcome.done.is_set(), "the graph run hangs after a restart"
            if outcome.error is not None:  # not retried: it must say why, typed
                assert isinstance(outcome.error, CheckpointKitError), repr(outcome.error)
                out = counting_graph(saver, stop_at).invoke(None, GRAPH)
            else:
                out = outcome.value
            assert out == {"count": stop_at, "log": list(range(stop_at))}
            deadline = time.monotonic() + RECOVER_WITHIN
            while len(writer.acked) <= writer.acked_after["restart"] + 5:
                assert time.monotonic() < deadline, "the raw writer did not recover"
                time.sleep(0.05)
        assert check_run(saver, stop_at) == stop_at
        tally["acknowledged writes checked"] += 2 * writer.check(saver, tally)
    tally["faults recovered"] += 1


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_long_outage_fails_typed_and_the_same_saver_recovers(
    private: Private, tally: Counter[str]
) -> None:
    with private.open() as saver:
        progress = threading.Event()
        graph = counting_graph(saver, 10**9, progress)
        with RawWriter(saver) as writer:
            runner, outcome = in_background(
                lambda: graph.invoke({"count": 0, "log": []}, GRAPH, durability="sync")
            )
            wait_for(progress, outcome, "the graph run")
            private.server.kill()
            runner.join(FAIL_WITHIN)
            assert outcome.done.is_set(), (
                f"the graph run hangs with the server down ({FAIL_WITHIN}s)"
            )
            assert isinstance(outcome.error, BackendUnavailableError), repr(outcome.error)
            for call in (
                lambda: saver.get_tuple(config("graph")),
                lambda: list(saver.list(config("graph"), limit=3)),
                lambda: saver.put(config("other"), checkpoint({}, {}), {}, {}),
            ):
                started = time.monotonic()
                with pytest.raises(BackendUnavailableError):
                    call()
                assert time.monotonic() - started < FAIL_WITHIN
            writer.mark("down")
            private.server.start()
            # The same saver, not reopened: its connections were dead, it makes new ones.
            count = eventually(lambda: check_run(saver, 0))
            assert count >= 5
            deadline = time.monotonic() + RECOVER_WITHIN
            while len(writer.acked) <= writer.acked_after["down"] + 5:
                assert writer.untyped is None, repr(writer.untyped)
                assert time.monotonic() < deadline, "the raw writer did not recover"
                time.sleep(0.05)
        assert writer.typed_errors, "the raw writer never saw the outage"
        assert all(isinstance(e, BackendUnavailableError) for e in writer.typed_errors)
        out = counting_graph(saver, count + 10).invoke(None, GRAPH)
        assert out == {"count": count + 10, "log": list(range(count + 10))}
        tally["acknowledged writes checked"] += 2 * writer.check(saver, tally)
    tally["faults recovered"] += 1
