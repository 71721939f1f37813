"""Schema management: idempotent, transactional, concurrent and versioned ``setup``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from checkpointkit.checkpointers.postgres import (
    SCHEMA_VERSION,
    AsyncPostgresCheckpointer,
    PostgresCheckpointer,
)
from checkpointkit.errors import ConfigurationError, MissingDependencyError, SchemaVersionError
from tests.contract.helpers import config, new_thread
from tests.postgres.helpers import Run

ROOT = Path(__file__).resolve().parents[2]


def versions(uri: str, schema: str) -> list[int]:
    with psycopg.connect(uri) as conn:
        table = sql.Identifier(schema, "ck_schema_version")
        rows = conn.execute(sql.SQL("SELECT version FROM {} ORDER BY 1").format(table))
        return [r[0] for r in rows]


def test_setup_is_idempotent(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema) as saver:
        saver.setup()
        saver.setup()
        Run(saver, new_thread()).step(a=1)
    assert versions(postgres_uri, schema) == list(range(1, SCHEMA_VERSION + 1))


def test_setup_inside_a_transaction_uses_it(postgres_uri: str, schema: str) -> None:
    with psycopg.connect(postgres_uri) as conn:
        saver = PostgresCheckpointer(conn, schema=schema)
        with conn.transaction(force_rollback=True):
            saver.setup()
            run = Run(saver, new_thread())
            run.step(a=1)
            run.check()
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        # rolled back with the caller's transaction: no tables
        row = conn.execute("SELECT to_regclass(%s)", [f"{schema}.ck_checkpoints"]).fetchone()
        assert row == (None,)
        conn.rollback()  # end the transaction that query began
        saver.setup()  # outside a transaction, on a non-autocommit connection
        run = Run(saver, new_thread())
        run.step(a=2)
        run.check()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_async_setup_inside_a_transaction(postgres_uri: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_uri) as conn:
        saver = AsyncPostgresCheckpointer(conn, schema=schema)
        async with conn.transaction():
            await saver.asetup()
            run = Run(saver, new_thread())
            await run.astep(a=1)
        await run.acheck()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


_SETUP_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from checkpointkit.checkpointers.postgres import PostgresCheckpointer
    uri, schema, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))
    with PostgresCheckpointer.from_conn_string(uri, schema=schema) as saver:
        saver.setup()
    print("ready")
    """
)


@pytest.mark.slow
def test_setup_from_four_processes_at_once(postgres_database_uri: str) -> None:
    start = time.time() + 4  # past the imports of all four
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SETUP_SCRIPT, postgres_database_uri, "fresh", str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ready"
    assert versions(postgres_database_uri, "fresh") == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_version_is_refused(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema):
        pass
    with psycopg.connect(postgres_uri) as conn:
        table = sql.Identifier(schema, "ck_schema_version")
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(table), [SCHEMA_VERSION + 1])
    with (
        pytest.raises(SchemaVersionError, match="newer checkpointkit"),
        PostgresCheckpointer.from_conn_string(postgres_uri, schema=schema),
    ):
        pass
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        saver = PostgresCheckpointer(conn, schema=schema)  # sets up on first use
        with pytest.raises(SchemaVersionError):
            saver.get_tuple(config(new_thread()))


async def test_a_newer_schema_version_is_refused_async(postgres_uri: str, schema: str) -> None:
    async with AsyncPostgresCheckpointer.from_conn_string(postgres_uri, schema=schema):
        pass
    with psycopg.connect(postgres_uri) as conn:
        table = sql.Identifier(schema, "ck_schema_version")
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(table), [SCHEMA_VERSION + 5])
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION + 5}"):
        async with AsyncPostgresCheckpointer.from_conn_string(postgres_uri, schema=schema):
            pass


def test_without_auto_setup_missing_tables_are_a_typed_error(
    postgres_uri: str, schema: str
) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, auto_setup=False
    ) as saver:
        with pytest.raises(ConfigurationError, match="setup"):
            saver.get_tuple(config(new_thread()))
        saver.setup()
        assert saver.get_tuple(config(new_thread())) is None


def test_bad_names_and_options_are_typed_errors(postgres_uri: str) -> None:
    with psycopg.connect(postgres_uri) as conn:
        with pytest.raises(ConfigurationError, match="63-byte"):
            PostgresCheckpointer(conn, table_prefix="p" * 60)
        with pytest.raises(ConfigurationError, match="schema"):
            PostgresCheckpointer(conn, schema="")
        with pytest.raises(ConfigurationError, match="keep_last"):
            PostgresCheckpointer(conn, keep_last=0)
        with pytest.raises(ConfigurationError, match="ttl"):
            PostgresCheckpointer(conn, ttl=-1)
        with pytest.raises(ConfigurationError, match="connection pool"):
            PostgresCheckpointer(postgres_uri)  # type: ignore[arg-type]
    with (
        pytest.raises(ConfigurationError, match="synchronous_commit"),
        PostgresCheckpointer.from_conn_string(postgres_uri, synchronous_commit="sometimes"),
    ):
        pass


def test_synchronous_commit_option_reaches_the_connections(postgres_uri: str, schema: str) -> None:
    with PostgresCheckpointer.from_conn_string(
        postgres_uri, schema=schema, synchronous_commit="off", max_size=1
    ) as saver:
        Run(saver, new_thread()).step(a=1)
        pool = saver._pool
        assert pool is not None
        with pool.connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
            # the URI's own options (the harness's search_path) are kept
            assert conn.execute("SELECT current_schema()").fetchone() == (schema,)


def test_import_without_psycopg_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None
        try:
            import checkpointkit.checkpointers.postgres
        except ImportError as exc:
            print(type(exc).__name__, exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(MissingDependencyError.__name__)
    assert "checkpointkit[postgres]" in out
