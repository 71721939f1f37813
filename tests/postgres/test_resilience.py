"""A server that restarts or goes away: retried when safe, typed errors otherwise."""

from __future__ import annotations

import operator
import socket
import time
from collections.abc import Callable
from typing import Annotated, Any

import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.checkpointers.postgres import AsyncPostgresCheckpointer, PostgresCheckpointer
from checkpointkit.errors import BackendUnavailableError
from tests.contract.helpers import config, new_thread
from tests.harness.servers import PostgresServer
from tests.postgres.helpers import Run

STEPS = 12


class Counter(TypedDict):
    count: int
    seen: Annotated[list[int], operator.add]


def counter_graph(saver: BaseCheckpointSaver[Any], on_step: Callable[[int], None]) -> Any:
    def work(state: Counter) -> dict[str, Any]:
        on_step(state["count"])
        return {"count": state["count"] + 1, "seen": [state["count"]]}

    def route(state: Counter) -> str:
        return END if state["count"] >= STEPS else "work"

    builder = StateGraph(Counter)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_conditional_edges("work", route)
    return builder.compile(checkpointer=saver)


def expected_history() -> list[Any]:
    graph = counter_graph(InMemorySaver(), lambda _: None)
    cfg = {"configurable": {"thread_id": "t"}}
    graph.invoke({"count": 0, "seen": []}, cfg)
    return [(s.values, s.next) for s in graph.get_state_history(cfg)]


def test_server_restart_during_a_run_is_retried(
    postgres_factory: Callable[..., PostgresServer],
) -> None:
    server = postgres_factory()
    restarts = []

    def on_step(count: int) -> None:
        if count in (4, 8):
            server.restart()
            restarts.append(count)

    with PostgresCheckpointer.from_conn_string(server.uri, min_size=2, max_size=4) as saver:
        graph = counter_graph(saver, on_step)
        cfg = {"configurable": {"thread_id": new_thread()}}
        out = graph.invoke({"count": 0, "seen": []}, cfg)
        assert restarts == [4, 8]
        assert out == {"count": STEPS, "seen": list(range(STEPS))}
        history = [(s.values, s.next) for s in graph.get_state_history(cfg)]
    assert history == expected_history()


def test_without_retries_the_run_fails_typed_and_resumes(
    postgres_factory: Callable[..., PostgresServer],
) -> None:
    server = postgres_factory()
    restarted = []

    def on_step(count: int) -> None:
        if count == 5 and not restarted:
            server.restart()
            restarted.append(count)

    with PostgresCheckpointer.from_conn_string(server.uri, retry_timeout=0, max_size=2) as saver:
        graph = counter_graph(saver, on_step)
        cfg = {"configurable": {"thread_id": new_thread()}}
        with pytest.raises(BackendUnavailableError) as caught:
            # durability="sync": each step waits for its checkpoint, so the run
            # stops at the failed put (in "async" mode later steps would go on)
            graph.invoke({"count": 0, "seen": []}, cfg, durability="sync")
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        # the last checkpoint stored: before the failed put, or the end when what
        # failed was a task's writes (LangGraph stores those in the background)
        assert 1 <= graph.get_state(cfg).values["count"] <= STEPS
        out = graph.invoke(None, cfg)  # resume from it
        assert out == {"count": STEPS, "seen": list(range(STEPS))}
        history = [(s.values, s.next) for s in graph.get_state_history(cfg)]
    # nothing lost: every step is in the history, each once, in order
    assert [values for values, _ in history if values] == [v for v, _ in expected_history() if v]


async def test_async_saver_rides_out_a_restart(
    postgres_factory: Callable[..., PostgresServer],
) -> None:
    server = postgres_factory()

    def on_step(count: int) -> None:
        if count == 6:
            server.restart()

    async with AsyncPostgresCheckpointer.from_conn_string(server.uri, max_size=4) as saver:
        graph = counter_graph(saver, on_step)
        cfg = {"configurable": {"thread_id": new_thread()}}
        out = await graph.ainvoke({"count": 0, "seen": []}, cfg)
        assert out == {"count": STEPS, "seen": list(range(STEPS))}
        history = [(s.values, s.next) async for s in graph.aget_state_history(cfg)]
    assert history == expected_history()


def test_server_down_is_a_typed_error_then_recovers(
    postgres_factory: Callable[..., PostgresServer],
) -> None:
    server = postgres_factory()
    # `timeout` bounds each wait for a pooled connection, `retry_timeout` the retries
    with PostgresCheckpointer.from_conn_string(server.uri, timeout=1, retry_timeout=0.3) as saver:
        run = Run(saver, new_thread())
        run.step(a=1)
        server.stop()
        with pytest.raises(BackendUnavailableError, match="unreachable") as caught:
            saver.get_tuple(config(run.thread_id))
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        with pytest.raises(BackendUnavailableError):
            run.step(a=2)
        server.start()
        # the pool reconnects on its own schedule (backing off while the server was down)
        deadline = time.monotonic() + 20
        while True:
            try:
                run.step(a=3)
                break
            except BackendUnavailableError:
                if time.monotonic() > deadline:
                    raise
        run.check()


def test_unreachable_server_at_start_is_a_typed_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1"
    with (
        pytest.raises(BackendUnavailableError),
        PostgresCheckpointer.from_conn_string(uri, timeout=1),
    ):
        pass
