"""The opt-in single-writer guard: a put that does not build on the newest checkpoint is refused.

Every backend takes ``single_writer=True``; in its put's own atomic section it
compares the newest stored checkpoint of the thread and namespace with the
put's parent (`checkpointkit.checkpointers.base.check_single_writer`). Without
the option, the same puts fork the history silently, as LangGraph's savers do.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from checkpointkit.errors import CheckpointKitError, WriteConflictError
from tests.contract.conftest import Api
from tests.contract.helpers import checkpoint, config, new_thread

guarded = pytest.mark.saver_options(single_writer=True)


async def put(api: Api, thread_id: str, parent: str | None, n: int, ns: str = "") -> str:
    """Put a checkpoint built on `parent`; return its id."""
    cp = checkpoint({"n": n}, {"n": n})
    await api.put(config(thread_id, ns, parent), cp, {"source": "loop", "step": n}, {"n": n})
    return cp["id"]


@guarded
async def test_a_second_writer_on_an_old_parent_is_refused(api: Api) -> None:
    thread = new_thread()
    first = await put(api, thread, None, 1)
    mine = await put(api, thread, first, 2)
    with pytest.raises(WriteConflictError) as caught:
        await put(api, thread, first, 3)  # built on `first`, but `mine` is newer
    err = caught.value
    assert isinstance(err, CheckpointKitError)
    assert (err.thread_id, err.parent_id, err.newest_id) == (thread, first, mine)
    assert mine in str(err)
    assert thread in str(err)
    # nothing of the refused put is stored
    assert [t.checkpoint["id"] for t in await api.list(config(thread))] == [mine, first]
    latest = await api.get_tuple(config(thread))
    assert latest is not None
    assert latest.checkpoint["channel_values"] == {"n": 2}


@guarded
async def test_building_on_the_newest_checkpoint_goes_on(api: Api) -> None:
    thread = new_thread()
    parent = None
    ids = []
    for n in range(1, 6):
        parent = await put(api, thread, parent, n)
        ids.append(parent)
    assert [t.checkpoint["id"] for t in await api.list(config(thread))] == ids[::-1]


@guarded
async def test_two_writers_starting_one_thread(api: Api) -> None:
    thread = new_thread()
    first = await put(api, thread, None, 1)
    with pytest.raises(WriteConflictError):
        await put(api, thread, None, 2)
    assert [t.checkpoint["id"] for t in await api.list(config(thread))] == [first]


@guarded
async def test_putting_the_same_checkpoint_again_passes(api: Api) -> None:
    thread = new_thread()
    first = await put(api, thread, None, 1)
    cp = checkpoint({"n": 2}, {"n": 2})
    for _ in range(2):
        await api.put(config(thread, "", first), cp, {"source": "loop", "step": 2}, {"n": 2})
    assert len(await api.list(config(thread))) == 2


@guarded
async def test_a_parent_newer_than_anything_stored_passes(api: Api) -> None:
    # durability="exit" stores only a run's last checkpoint; its parent never was
    thread = new_thread()
    first = await put(api, thread, None, 1)
    unsaved = checkpoint({"n": 2}, {"n": 2})["id"]
    last = await put(api, thread, unsaved, 3)
    assert [t.checkpoint["id"] for t in await api.list(config(thread))] == [last, first]


@guarded
async def test_namespaces_and_threads_are_guarded_apart(api: Api) -> None:
    thread, other = new_thread(), new_thread()
    root = await put(api, thread, None, 1)
    await put(api, thread, root, 2)
    child = await put(api, thread, None, 1, ns="child:1")  # a namespace of its own
    await put(api, thread, child, 2, ns="child:1")
    await put(api, other, None, 1)  # another thread of its own
    with pytest.raises(WriteConflictError) as caught:
        await put(api, thread, child, 3, ns="child:1")
    assert caught.value.checkpoint_ns == "child:1"


async def test_without_the_guard_an_old_parent_forks(api: Api) -> None:
    thread = new_thread()
    first = await put(api, thread, None, 1)
    await put(api, thread, first, 2)
    await put(api, thread, first, 3)  # a fork: LangGraph's behaviour
    assert len(await api.list(config(thread))) == 3


# --- two real graph runs on one thread -------------------------------------------


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(saver: BaseCheckpointSaver[Any], slow: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("slow", slow)
    builder.add_node("after", lambda s: {"log": ["after"]})
    builder.add_edge(START, "slow")
    builder.add_edge("slow", "after")
    return builder.compile(checkpointer=saver)


def _linear(snapshots: list[Any]) -> bool:
    """Tell whether a history is one chain (no two checkpoints share a parent)."""
    parents = [
        s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None
        for s in snapshots
    ]
    return len(parents) == len(set(parents))


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "unguarded"])
async def test_a_run_overtaken_by_another_worker(
    backend: str, request: pytest.FixtureRequest, mode: str, guard: bool
) -> None:
    """Run 1 blocks in a node; run 2 on the same thread completes; run 1 then puts.

    Durability "sync": run 1's checkpoint before the node is stored when the
    node starts, so run 2 builds on it and run 1 is the one overtaken.
    """
    from tests.contract.backends import BACKENDS

    request.applymarker(pytest.mark.saver_options(single_writer=guard))
    cfg = {"configurable": {"thread_id": new_thread()}}
    with BACKENDS[backend](request) as saver:
        if mode == "sync":
            entered, gate = threading.Event(), threading.Event()

            def slow(state: State) -> dict[str, Any]:
                if not entered.is_set():
                    entered.set()
                    assert gate.wait(30)
                return {"log": ["slow"]}

            graph = _graph(saver, slow)
            outcome: list[BaseException | None] = []

            def first_run() -> None:
                try:
                    graph.invoke({"log": ["run 1"]}, cfg, durability="sync")
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            runner = threading.Thread(target=first_run)
            runner.start()
            assert entered.wait(30)
            graph.invoke({"log": ["run 2"]}, cfg, durability="sync")
            gate.set()
            runner.join(30)
            history = list(graph.get_state_history(cfg))
            final = graph.get_state(cfg).values
        else:
            a_entered, a_gate = asyncio.Event(), asyncio.Event()

            async def aslow(state: State) -> dict[str, Any]:
                if not a_entered.is_set():
                    a_entered.set()
                    await asyncio.wait_for(a_gate.wait(), 30)
                return {"log": ["slow"]}

            graph = _graph(saver, aslow)
            task = asyncio.ensure_future(graph.ainvoke({"log": ["run 1"]}, cfg, durability="sync"))
            await asyncio.wait_for(a_entered.wait(), 30)
            await graph.ainvoke({"log": ["run 2"]}, cfg, durability="sync")
            a_gate.set()
            results = await asyncio.gather(task, return_exceptions=True)
            outcome = [r if isinstance(r, BaseException) else None for r in results]
            history = [s async for s in graph.aget_state_history(cfg)]
            final = (await graph.aget_state(cfg)).values
    if guard:
        assert len(outcome) == 1
        assert isinstance(outcome[0], WriteConflictError)
        assert _linear(history)
        assert final["log"] == ["run 1", "run 2", "slow", "after"]
    else:
        assert outcome == [None]  # both runs stored: the history forked
        assert not _linear(history)
