"""Schema versions 2-4: server-side functions, prepared statements if asked, lean ``list`` pages."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import pytest
from psycopg import sql

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.postgres import SCHEMA_VERSION, PostgresCheckpointer, _codec
from checkpointkit.checkpointers.postgres._schema import BOOTSTRAP, MIGRATIONS, Names
from checkpointkit.errors import ConfigurationError
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run, msg
from tests.postgres.test_round_trips import round_trips
from tests.postgres.test_values import ODD_TEXT


def make_version(uri: str, schema: str, version: int) -> None:
    """Create the tables as checkpointkit's schema `version` left them."""
    names = Names(schema, "ck_")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(names.render(BOOTSTRAP))
        table = sql.Identifier(schema, "ck_schema_version")
        for n in range(1, version + 1):
            conn.execute(names.render(MIGRATIONS[n - 1]))
            conn.execute(sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(table), [n])


def make_version_1(uri: str, schema: str) -> None:
    make_version(uri, schema, 1)


def functions(uri: str, schema: str) -> list[str]:
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s ORDER BY 1",
            [schema],
        ).fetchall()
    return [r[0] for r in rows]


# SHA-256 of each released migration as installed for schema "public", prefix
# "ck_": databases already migrated ran exactly this text, so the fragments the
# put functions share (`_functions`) must never change what an old version says.
RELEASED_MIGRATIONS = {
    1: "58ac65e72eb23a593e495e130cce14e6b04775bff0f2991d13b93e05afbce1d1",
    2: "ed2c1e47059bf79fcef38608d74e7b8fcc33311f39e351699e2b1f07eb0a28a2",
    3: "886a8ac9652014cfdaeb6eeebaaf108bc42cd2a7e48fd329e93a77d2c9bc9316",
}


def test_released_migrations_are_never_edited() -> None:
    names = Names("public", "ck_")
    assert {
        version: hashlib.sha256(names.render(MIGRATIONS[version - 1])).hexdigest()
        for version in RELEASED_MIGRATIONS
    } == RELEASED_MIGRATIONS


def test_version_1_tables_are_migrated_to_the_functions(postgres_uri: str, schema: str) -> None:
    assert SCHEMA_VERSION == 4
    make_version_1(postgres_uri, schema)
    assert functions(postgres_uri, schema) == []
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as saver:
        run = Run(saver, new_thread())
        run.step(a=1, messages=[msg(0)])
        run.step(messages=[msg(0), msg(1)])
        run.check()
    # versions 3 and 4 add overloads with other arguments; older ones stay for old workers
    assert functions(postgres_uri, schema) == [
        "ck_get_tuple",
        "ck_get_tuple",
        "ck_put",
        "ck_put",
        "ck_put",
    ]
    with psycopg.connect(postgres_uri) as conn:
        table = sql.Identifier(schema, "ck_schema_version")
        stamped = conn.execute(sql.SQL("SELECT version FROM {} ORDER BY 1").format(table))
        assert [r[0] for r in stamped] == [1, 2, 3, 4]


def test_version_2_data_is_read_and_extended_after_migrating(
    postgres_uri: str, schema: str
) -> None:
    """A thread written at version 2 (foreign key on delta bases) reads back after migrating."""
    make_version(postgres_uri, schema, 2)
    thread_id = new_thread()
    memory = MemoryCheckpointer()
    messages: list[Any] = []
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        # the version 2 put, as the previous release called it
        old = PostgresCheckpointer(conn, schema=schema, auto_setup=False)
        old._q.put = _V2_PUT_CALL.replace("{fn_put}", f'"{schema}"."ck_put"').encode()
        run = Run(old, thread_id, mirror=memory)
        real = _codec.put_params

        def v2_params(plan: Any, lock: tuple[int, int], guard: int | None) -> dict[str, Any]:
            params = real(plan, lock, None)
            for name in ("blobs", "blob_count", "data", "guard"):
                del params[name]
            arrays = _codec.blob_params(plan.blobs)
            del arrays["namespaces"]
            return {**params, **arrays}

        try:
            _codec.put_params = v2_params  # type: ignore[assignment]
            for i in range(6):
                messages = [*messages, msg(i)]
                run.step(messages=messages, count=i)
        finally:
            _codec.put_params = real  # type: ignore[assignment]
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as saver:
        assert [t.checkpoint for t in saver.list(config(thread_id))] == [
            t.checkpoint for t in memory.list(config(thread_id))
        ]
        run.saver = saver
        for i in range(6, 9):  # deltas on version 2 rows, through the current put
            messages = [*messages, msg(i)]
            run.step(messages=messages, count=i)
        run.check()
        assert [t.checkpoint for t in saver.list(config(thread_id))] == [
            t.checkpoint for t in memory.list(config(thread_id))
        ]
    with psycopg.connect(postgres_uri) as conn:
        constraints = conn.execute(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = %s AND contype = 'f'",
            [schema],
        ).fetchall()
        assert constraints == []
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'ck_checkpoints'",
            [schema],
        ).fetchall()
        assert ("created_at",) not in columns


# The version 2 call of ``put`` (without the single-writer guard's key).
_V2_PUT_CALL = """
SELECT {fn_put}(
    %(lock_a)s::int4, %(lock_b)s::int4, %(thread_id)s::text, %(checkpoint_ns)s::text,
    %(checkpoint_id)s::text, %(parent_id)s::text, %(run_id)s::text, %(ts)s::text,
    %(skeleton)s::bytea, %(metadata)s::bytea, %(metadata_idx)s::jsonb,
    %(channel_versions)s::jsonb, %(root)s::bool, %(channels)b::text[], %(versions)b::text[],
    %(kinds)b::int2[], %(types)b::text[], %(payloads)b::bytea[], %(chains)b::text[],
    %(seqs)b::int4[], %(bases)b::text[], %(ops)b::bytea[], %(lengths)b::int4[],
    %(wrapped)b::bool[])
"""


def test_version_1_tables_without_setup_are_a_typed_error(postgres_uri: str, schema: str) -> None:
    make_version_1(postgres_uri, schema)
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, auto_setup=False
    ) as saver:
        with pytest.raises(ConfigurationError, match="setup"):
            saver.get_tuple(config(new_thread()))
        saver.setup()
        assert saver.get_tuple(config(new_thread())) is None


def test_a_put_through_the_function_keeps_every_byte_in_one_round_trip(
    postgres_uri: str, schema: str
) -> None:
    with psycopg.connect(postgres_uri, autocommit=True, prepare_threshold=None) as conn:
        saver = PostgresCheckpointer(conn, schema=schema)
        saver.setup()
        run = Run(saver, new_thread())
        odd = {"text": "x\x00y", "odd": ODD_TEXT, "raw": bytes(range(256)), "items": ["\x00"]}
        metadata = {"nested": {"k\x00": ["\x00", ODD_TEXT]}, "half": "\ud800 alone"}
        assert round_trips(conn, lambda: run.step(metadata, **odd)) == 1
        got: list[Any] = []
        assert round_trips(conn, lambda: got.append(saver.get_tuple(config(run.thread_id)))) == 1
        assert got[0].checkpoint["channel_values"] == odd
        assert got[0].metadata["nested"] == metadata["nested"]
        assert got[0].metadata["half"] == "\ud800 alone"


def test_index_json_returns_plain_metadata_as_it_is() -> None:
    plain = '{"source": "loop", "step": 3, "parents": {}, "note": "é ☃"}'
    assert _codec.index_json(plain) is plain
    for text in ('{"flag": true}', '{"x": NaN}', '{"k": "a\\u0000b"}', '{"e": "\ufffe"}'):
        assert _codec.index_json(text) != text


def test_prepared_statements_when_asked(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, prepare_threshold=0, max_size=1
    ) as saver:  # setup's multi-statement scripts are never prepared
        run = Run(saver, new_thread())
        messages: list[Any] = []
        for i in range(4):
            messages = [*messages, msg(i)]
            run.step(messages=messages, count=i)
            saver.put_writes(config(run.thread_id, checkpoint_id=run.head), [("count", i)], "t")
        run.check()
        assert len(list(saver.list(config(run.thread_id)))) == 4
        pool = saver._pool
        assert pool is not None
        with pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
            assert row is not None
            assert row[0] >= 3  # put, put_writes, get_tuple at least


def test_put_writes_mixing_ordinary_and_special_writes(saver: PostgresCheckpointer) -> None:
    memory = MemoryCheckpointer()
    thread_id = new_thread()
    for target in (memory, saver):
        run = Run(target, thread_id)
        run.step(a=1)
        head = config(thread_id, checkpoint_id=run.head)
        target.put_writes(head, [("a", 1), ("__error__", "boom"), ("b", 2)], "task")
        # ordinary writes keep the first value, special ones the last
        target.put_writes(head, [("a", 9), ("__error__", "bang"), ("__interrupt__", "x")], "task")
        target.put_writes(head, [("__interrupt__", "y")], "task")
    expected = memory.get_tuple(config(thread_id))
    got = saver.get_tuple(config(thread_id))
    assert expected is not None
    assert got is not None
    assert got.pending_writes == expected.pending_writes


def rows_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the rows of every list page the saver reads."""
    seen: list[int] = []
    decode = _codec.decode_page

    def counting(rows: Any, *, values: bool) -> Any:
        rows = list(rows)
        seen.append(len(rows))
        return decode(rows, values=values)

    monkeypatch.setattr(_codec, "decode_page", counting)
    return seen


def test_list_leaves_out_the_chain_rows_this_process_holds(
    postgres_uri: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(postgres_uri, autocommit=True, prepare_threshold=None) as conn:
        saver = PostgresCheckpointer(conn, schema=schema, page_size=10)
        saver.setup()
        memory = MemoryCheckpointer()
        thread_id = new_thread()
        runs = [Run(memory, thread_id), Run(saver, thread_id)]
        messages: list[Any] = []
        for i in range(40):
            messages = [*messages, msg(i)]
            for run in runs:
                run.step(messages=messages, count=i)
        seen = rows_read(monkeypatch)

        def listing(**kwargs: Any) -> list[Any]:
            found = list(saver.list(config(thread_id), **kwargs))
            assert [t.checkpoint["channel_values"] for t in found] == [
                t.checkpoint["channel_values"] for t in memory.list(config(thread_id), **kwargs)
            ]
            return found

        # The newest page: the list versions are prefixes of the cached one,
        # so no delta chain is sent (10 checkpoints, 20 values).
        assert round_trips(conn, lambda: listing(limit=10)) == 1
        assert seen == [30]
        # The whole history: each page is sliced out of the one before (and
        # a last, empty page says the list is over).
        seen.clear()
        assert round_trips(conn, listing) == 5
        assert seen == [30, 30, 30, 30, 0]
        # An older page is not covered by the cached version: read again
        # with its chain rows, as another process would.
        seen.clear()
        before_ours = config(thread_id, checkpoint_id=runs[1].history[20][0])
        found = list(saver.list(config(thread_id), before=before_ours, limit=5))
        assert [t.checkpoint["channel_values"]["count"] for t in found] == [19, 18, 17, 16, 15]
        seen.clear()
        older = lambda: list(saver.list(config(thread_id), before=before_ours, limit=5))  # noqa: E731
        assert round_trips(conn, older) == 2
        assert seen[0] == 15
        assert seen[1] > 15
        # Another process (nothing cached) gets the chains in the first read.
        cold = PostgresCheckpointer(conn, schema=schema, page_size=10)
        seen.clear()
        found = list(cold.list(config(thread_id), limit=10))
        assert [t.checkpoint["channel_values"] for t in found] == [
            t.checkpoint["channel_values"] for t in memory.list(config(thread_id), limit=10)
        ]
        assert len(seen) == 1
        assert seen[0] > 30


# The version 3 call of ``put``, as the release before version 4 sends it.
_V3_PUT_CALL = """
SELECT {fn_put}(
    %(lock_a)s::int4, %(lock_b)s::int4, %(guard)s::int8, %(thread_id)s::text,
    %(checkpoint_ns)s::text, %(checkpoint_id)s::text, %(parent_id)s::text, %(run_id)s::text,
    %(ts)s::text, %(skeleton)s::bytea, %(metadata)s::bytea, %(metadata_idx)s::jsonb,
    %(channel_versions)s::jsonb, %(root)s::bool, %(blobs)s::json, %(data)s::bytea)
"""


def v3_saver(conn: psycopg.Connection[Any], schema: str) -> PostgresCheckpointer:
    """A saver calling the version 3 ``put``, as a worker of the release before does."""
    old = PostgresCheckpointer(conn, schema=schema, auto_setup=False)
    old._q.put = _V3_PUT_CALL.replace("{fn_put}", f'"{schema}"."ck_put"').encode()
    return old


def test_version_3_workers_keep_writing_after_the_migration_to_version_4(
    postgres_uri: str, schema: str
) -> None:
    """Deltas written by version 3's put and by version 4's build on each other."""
    make_version(postgres_uri, schema, 3)
    thread_id = new_thread()
    memory = MemoryCheckpointer()
    messages: list[Any] = []
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        old = v3_saver(conn, schema)  # its call leaves out the argument version 4 added
        run = Run(old, thread_id, mirror=memory)
        for i in range(4):
            messages = [*messages, msg(i)]
            run.step(messages=messages, count=i)
        with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as new:
            for i in range(4, 8):  # the new release migrates, the old one keeps going
                run.saver = new if i % 2 else old
                messages = [*messages, msg(i)]
                run.step(messages=messages, count=i)
            run.saver = new
            run.check()
            assert [t.checkpoint for t in new.list(config(thread_id))] == [
                t.checkpoint for t in memory.list(config(thread_id))
            ]
    assert functions(postgres_uri, schema).count("ck_put") == 3


def test_putting_a_checkpoint_again_keeps_its_list_deltas(saver: PostgresCheckpointer) -> None:
    """A put whose delta rows are all stored already (a retry) passes the base check."""
    run = Run(saver, new_thread())
    messages: list[Any] = []
    for i in range(3):
        messages = [*messages, msg(i)]
        run.step(messages=messages, count=i)
    messages = [*messages, msg(3)]
    args = run._args(None, {"messages": messages, "count": 3})
    first = saver.put(*args)
    again = saver.put(*args)  # every row conflicts: fewer rows stored than sent
    assert again == first
    run._done(first)
    run.check()
    assert saver.list_threads()[0].checkpoint_count == 4


def test_byte_columns_compress_with_lz4_when_the_server_has_it(
    saver: PostgresCheckpointer, postgres_uri: str, schema: str
) -> None:
    run = Run(saver, new_thread())
    big = "".join(f"item {i}; " for i in range(3000))  # ~28 kB, well over TOAST's threshold
    run.step(big=big, messages=[msg(0)])
    run.check()
    with psycopg.connect(postgres_uri) as conn:
        row = conn.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        lz4 = bool(row and row[0])
        settings = conn.execute(
            "SELECT c.relname, a.attname, a.attcompression FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND a.attname IN ('skeleton', 'metadata', 'payload', 'ops')"
            " AND c.relkind = 'r' ORDER BY 1, 2",
            [schema],
        ).fetchall()
        assert settings == [
            (table, column, "l" if lz4 else "")
            for table, column in [
                ("ck_blobs", "ops"),
                ("ck_blobs", "payload"),
                ("ck_checkpoints", "metadata"),
                ("ck_checkpoints", "skeleton"),
                ("ck_threads", "metadata"),
                ("ck_writes", "payload"),
            ]
        ]
        stored = conn.execute(
            sql.SQL(
                "SELECT pg_column_compression(payload), octet_length(payload),"
                " pg_column_size(payload) FROM {} WHERE channel = 'big'"
            ).format(sql.Identifier(schema, "ck_blobs"))
        ).fetchone()
        assert stored is not None
        method, length, size = stored
        assert method == ("lz4" if lz4 else "pglz")
        assert size < length / 2
