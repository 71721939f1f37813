"""Retention: ``sweep`` with a TTL and ``keep_last``, pruning and reference-aware cleanup."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
from langgraph.checkpoint.base import INTERRUPT
from psycopg import sql

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.postgres import PostgresCheckpointer, SweepResult
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import NO_VALUE, Run, msg


def backdate(uri: str, schema: str, thread_ids: list[str], hours: int) -> None:
    with psycopg.connect(uri) as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET touched_at = now() - make_interval(hours => %s)"
                " WHERE thread_id = ANY(%s)"
            ).format(sql.Identifier(schema, "ck_threads")),
            [hours, thread_ids],
        )


def test_sweep_deletes_threads_past_their_ttl(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, ttl=timedelta(hours=1)
    ) as saver:
        runs = [Run(saver, new_thread()) for _ in range(5)]
        for run in runs:
            run.step(messages=[msg(1)])
            run.step(messages=[msg(1), msg(2)])
        old = [run.thread_id for run in runs[:3]]
        backdate(postgres_uri, schema, old, hours=2)
        assert saver.sweep() == SweepResult(expired_threads=3)
        for run in runs[:3]:
            assert saver.get_tuple(config(run.thread_id)) is None
            assert saver.storage_bytes(run.thread_id) == 0
        for run in runs[3:]:
            run.check()
        assert {t.thread_id for t in saver.list_threads()} == {r.thread_id for r in runs[3:]}
        assert saver.sweep() == SweepResult()
        assert saver.sweep(ttl=None) == SweepResult()  # policy overridden off


def test_sweep_keeps_the_last_checkpoints_of_each_namespace(saver: PostgresCheckpointer) -> None:
    root = Run(saver, new_thread())
    sub = Run(saver, root.thread_id, ns="child:1")
    short = Run(saver, new_thread())
    messages: list[Any] = []
    for i in range(10):
        messages = [*messages, msg(i)]
        root.step(messages=messages, count=i)
        if i % 2:
            sub.step(messages=messages[-2:], count=i)
    short.step(count=1)
    head = config(root.thread_id, checkpoint_id=root.head)
    saver.put_writes(head, [(INTERRUPT, {"ask": "ok?"})], "task", "~t")

    result = saver.sweep(keep_last=3)
    assert result == SweepResult(pruned_threads=1, deleted_checkpoints=(10 - 3) + (5 - 3))
    for run in (root, sub):
        run.history = run.history[-3:]
        run.check()  # list deltas still rebuild after their bases were pruned
        listed = list(saver.list(config(run.thread_id, run.ns)))
        assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
            cid for cid, _ in reversed(run.history)
        ]
    latest = saver.get_tuple(config(root.thread_id))
    assert latest is not None
    assert latest.pending_writes == [("task", INTERRUPT, {"ask": "ok?"})]
    assert saver.sweep(keep_last=3) == SweepResult()  # nothing new since
    root.step(messages=[*messages, msg(10)], count=10)
    assert saver.sweep(keep_last=3) == SweepResult(pruned_threads=1, deleted_checkpoints=1)
    assert saver.list_threads()[0].checkpoint_count == 3


def test_sweep_keeps_what_delta_channels_need(saver: PostgresCheckpointer) -> None:
    memory = MemoryCheckpointer()
    run = Run(saver, new_thread(), mirror=memory)
    run.step(items=["seed"])
    for i in range(4):
        # a DeltaChannel step: a new version with no stored value, counters in metadata
        run.step({"counters_since_delta_snapshot": {"items": i + 1}}, items=NO_VALUE, other=i)
        for target in (saver, memory):
            head = config(run.thread_id, checkpoint_id=run.head)
            target.put_writes(head, [("items", f"w{i}")], f"t{i}", "~t")
    head = config(run.thread_id, checkpoint_id=run.head)
    before = saver.get_delta_channel_history(config=head, channels=["items"])
    assert before["items"]["seed"] == ["seed"]
    assert [w[2] for w in before["items"]["writes"]] == ["w0", "w1", "w2"]
    assert saver.sweep(keep_last=1).deleted_checkpoints == 0  # all are needed
    memory.prune([run.thread_id])
    assert saver.get_delta_channel_history(config=head, channels=["items"]) == before
    assert [t.config for t in saver.list(None)] == [t.config for t in memory.list(None)]


def test_concurrent_sweeps_share_the_work(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema, max_size=8) as saver:
        runs = [Run(saver, new_thread()) for _ in range(40)]
        for run in runs:
            run.step(count=1)
            run.step(count=2)
        backdate(postgres_uri, schema, [r.thread_id for r in runs], hours=3)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: saver.sweep(ttl=3600, batch_size=5), range(4)))
        assert sum(r.expired_threads for r in results) == 40
        assert saver.list_threads() == []
        assert saver.storage_bytes() == 0


def test_a_put_whose_delta_base_was_deleted_is_stored_whole(postgres_uri: str, schema: str) -> None:
    with (
        PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as writer,
        PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as other,
    ):
        run = Run(writer, new_thread())
        messages: list[Any] = []
        for i in range(4):
            messages = [*messages, msg(i)]
            run.step(messages=messages)
        other.delete_thread(run.thread_id)  # the writer's cached base is gone
        run.history.clear()
        messages = [*messages, msg(4)]
        run.step(messages=messages)  # planned as a delta, re-planned as a snapshot
        run.check()
        tup = other.get_tuple(config(run.thread_id))
        assert tup is not None
        assert tup.checkpoint["channel_values"]["messages"] == messages


def test_prune_collects_values_no_checkpoint_needs(saver: PostgresCheckpointer) -> None:
    run = Run(saver, new_thread())
    for i in range(6):
        run.step(big=str(i) * 10_000, small=i)
    before = saver.storage_bytes(run.thread_id)
    saver.prune([run.thread_id])
    run.history = run.history[-1:]
    run.check()
    assert saver.storage_bytes(run.thread_id) < before / 4
