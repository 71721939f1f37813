"""Values and metadata round-trip exactly; filters match exactly like the memory saver."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.postgres import PostgresCheckpointer
from checkpointkit.errors import ConfigurationError
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run, msg

ODD_TEXT = "nul\x00inside ☃ 🙂 \U0010ffff \ufffe0 \\u0000 '\"; DROP TABLE x; --"


def test_nul_and_unicode_in_state_and_metadata(saver: PostgresCheckpointer) -> None:
    memory = MemoryCheckpointer()
    thread_id = new_thread()
    # LangGraph strips NUL from top-level metadata strings (for every saver);
    # nested ones are kept, and must come back exactly.
    metadata = {"note": "a\x00b", "odd": ODD_TEXT, "nested": {"k\x00": ["\x00", ODD_TEXT]}}
    runs = [Run(memory, thread_id), Run(saver, thread_id)]
    for run in runs:
        run.step(metadata, text="x\x00y", odd=ODD_TEXT, items=["\x00", {"\x00": "\x00"}])
    runs[1].check()
    tup = saver.get_tuple(config(thread_id))
    assert tup is not None
    assert tup.metadata == memory.get_tuple(config(thread_id)).metadata  # type: ignore[union-attr]
    assert tup.metadata["nested"] == metadata["nested"]  # type: ignore[typeddict-item]
    thread = config(thread_id)
    for filter in (
        {"nested": metadata["nested"]},
        {"note": "ab"},
        {"note": "a\x00b"},
        {"nested": {"k\x00": ["\x00", ODD_TEXT.replace("\x00", "")]}},
        {"nested": {"k\ufffe0": ["\ufffe0", ODD_TEXT]}},  # the index copy's escape of NUL
    ):
        expected = len(list(memory.list(thread, filter=filter)))
        assert len(list(saver.list(thread, filter=filter))) == expected, filter
        expected_threads = [t.thread_id for t in memory.list_threads(filter=filter)]
        assert [t.thread_id for t in saver.list_threads(filter=filter)] == expected_threads
    assert len(list(saver.list(thread, filter={"nested": metadata["nested"]}))) == 1


def test_lone_surrogate_in_metadata_round_trips(saver: PostgresCheckpointer) -> None:
    run = Run(saver, new_thread())
    run.step({"half": "\ud800 alone"}, a=1)
    tup = saver.get_tuple(config(run.thread_id))
    assert tup is not None
    assert tup.metadata["half"] == "\ud800 alone"  # type: ignore[typeddict-item]
    assert len(list(saver.list(None, filter={"half": "\ud800 alone"}))) == 1


def test_text_keys_postgres_cannot_store_are_typed_errors(saver: PostgresCheckpointer) -> None:
    with pytest.raises(ConfigurationError, match="NUL"):
        Run(saver, "thread\x00id").step(a=1)
    with pytest.raises(ConfigurationError, match="NUL"):
        Run(saver, new_thread()).step(**{"chan\x00nel": 1})
    with pytest.raises(ConfigurationError, match="NUL"):
        saver.get_tuple(config("thread\x00id"))


@pytest.mark.slow
def test_a_20_mb_state_value(saver: PostgresCheckpointer) -> None:
    big = os.urandom(20 * 2**20)
    text = "é" * (5 * 2**20)
    run = Run(saver, new_thread())
    run.step(blob=big, text=text)
    run.step(small=1)  # the big values are not stored again
    run.check()
    assert saver.storage_bytes(run.thread_id) < 2 * (len(big) + len(text.encode()))


@pytest.mark.parametrize(
    "filter",
    [
        {"user": "u1"},
        {"flag": True},  # Python: True == 1
        {"flag": 1.0},
        {"count": 0},  # Python: 0 == False
        {"tags": ["a"]},  # JSONB containment would match; equality does not
        {"tags": ["b", "a"]},
        {"tags": ["a", "b"]},
        {"nested": {"x": 1}},
        {"nested": {"x": 1, "y": [1, 2]}},
        {"none": None},
        {"missing": None},
        {"x') OR 1=1 --": "u1"},
        {"user": "u1' OR '1'='1"},
        {"user": "u1", "flag": 1},
    ],
)
def test_filters_match_exactly_like_the_memory_saver(
    saver: PostgresCheckpointer, filter: dict[str, Any]
) -> None:
    memory = MemoryCheckpointer()
    thread_id = new_thread()
    rows = [
        {"user": "u1", "flag": 1, "count": False, "tags": ["a", "b"], "none": None,
         "nested": {"x": 1, "y": [1, 2]}},
        {"user": "u2", "flag": True, "count": 0.0, "tags": ["b", "a"], "nested": {"x": 1}},
        {"user": "u1", "flag": 0, "tags": ["a"], "nested": {"x": 1.0, "y": [1, 2]}},
    ]  # fmt: skip
    runs = [Run(memory, thread_id), Run(saver, thread_id)]
    for i, metadata in enumerate(rows):
        for run in runs:
            run.step(metadata, a=i)
    expected = [t.checkpoint["channel_values"] for t in memory.list(None, filter=filter)]
    actual = [t.checkpoint["channel_values"] for t in saver.list(None, filter=filter)]
    assert actual == expected
    expected_threads = [t.thread_id for t in memory.list_threads(filter=filter)]
    assert [t.thread_id for t in saver.list_threads(filter=filter)] == expected_threads


def test_storage_bytes_count_what_the_memory_saver_counts(saver: PostgresCheckpointer) -> None:
    memory = MemoryCheckpointer()
    thread_id = new_thread()
    run = Run(saver, thread_id, mirror=memory)
    messages: list[Any] = []
    for i in range(12):
        messages = [*messages, msg(i)]
        run.step({"i": i}, messages=messages, count=i)
    for target in (memory, saver):
        head = config(thread_id, checkpoint_id=run.head)
        target.put_writes(head, [("count", 99)], "task", "~t")
    assert saver.storage_bytes(thread_id) == memory.storage_bytes(thread_id)
    assert saver.storage_bytes() >= saver.storage_bytes(thread_id) > 0
    saver.prune([thread_id])
    memory.prune([thread_id])
    assert saver.storage_bytes(thread_id) == memory.storage_bytes(thread_id)
    assert saver.disk_bytes() > saver.storage_bytes()


def test_list_metadata_reads_no_values(saver: PostgresCheckpointer) -> None:
    run = Run(saver, new_thread())
    for i in range(5):
        run.step({"kind": i % 2}, big=os.urandom(1000), count=i)
    summaries = list(saver.list_metadata(config(run.thread_id), filter={"kind": 1}))
    full = list(saver.list(config(run.thread_id), filter={"kind": 1}))
    assert [s.config for s in summaries] == [t.config for t in full]
    assert [s.metadata for s in summaries] == [t.metadata for t in full]
    assert [s.parent_config for s in summaries] == [t.parent_config for t in full]
    assert [s.ts for s in summaries] == [t.checkpoint["ts"] for t in full]


def test_schema_option_isolates_two_savers(postgres_database_uri: str) -> None:
    thread_id = new_thread()
    with (
        PostgresCheckpointer.from_conn_string(postgres_database_uri, schema="one") as one,
        PostgresCheckpointer.from_conn_string(postgres_database_uri, schema="two") as two,
        PostgresCheckpointer.from_conn_string(
            postgres_database_uri, schema='we"ird; DROP SCHEMA one --', table_prefix="x'"
        ) as odd,
    ):
        Run(one, thread_id).step({"who": "one"}, a=1)
        Run(two, thread_id).step({"who": "two"}, a=2)
        assert odd.get_tuple(config(thread_id)) is None
        for made, who, value in ((one, "one", 1), (two, "two", 2)):
            tup = made.get_tuple(config(thread_id))
            assert tup is not None
            assert tup.metadata["who"] == who  # type: ignore[typeddict-item]
            assert tup.checkpoint["channel_values"] == {"a": value}
        two.delete_thread(thread_id)
        assert one.get_tuple(config(thread_id)) is not None
    with psycopg.connect(postgres_database_uri) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_name LIKE '%%checkpoints' ORDER BY 1"
        ).fetchall()
    assert tables == [
        ("one", "ck_checkpoints"),
        ("two", "ck_checkpoints"),
        ('we"ird; DROP SCHEMA one --', "x'checkpoints"),
    ]
