"""The versioned schema: creation, migrations, refusal of newer files, pragmas."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from checkpointkit.checkpointers.sqlite import SCHEMA_VERSION, SQLiteCheckpointer
from checkpointkit.checkpointers.sqlite._schema import MIGRATIONS, Migration, migrate
from checkpointkit.errors import (
    ConfigurationError,
    CorruptDataError,
    SchemaVersionError,
)
from tests.contract.helpers import checkpoint, config

TABLES = {"ck_checkpoints", "ck_blobs", "ck_writes", "ck_metadata", "ck_threads"}


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return names


def versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    found = [r[0] for r in conn.execute("SELECT version FROM ck_schema_version ORDER BY 1")]
    conn.close()
    return found


def put_one(saver: SQLiteCheckpointer, thread_id: str = "t") -> None:
    version = saver.get_next_version(None, None)
    saver.put(config(thread_id), checkpoint({"a": 1}, {"a": version}), {}, {"a": version})


def test_setup_creates_the_schema_once_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    saver.setup()
    saver.setup()
    SQLiteCheckpointer(path).setup()  # another instance, same file
    assert tables(path) >= TABLES | {"ck_schema_version"}
    assert versions(path) == list(range(1, SCHEMA_VERSION + 1))
    saver.close()


def test_setup_runs_lazily_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path)
    assert saver.get_tuple(config("nobody")) is None
    assert tables(path) >= TABLES
    saver.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with SQLiteCheckpointer.from_conn_string(str(path)) as saver:
        put_one(saver)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO ck_schema_version VALUES (?, 'from the future', '2099-01-01')",
        (SCHEMA_VERSION + 1,),
    )
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION + 1}"):
        SQLiteCheckpointer(path).setup()
    with pytest.raises(SchemaVersionError):
        SQLiteCheckpointer(path).get_tuple(config("t"))


def test_a_version_zero_file_is_migrated_forward(tmp_path: Path) -> None:
    # "Version 0": the version table exists but no migration was recorded,
    # next to an unrelated table of the application.
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE ck_schema_version (version INTEGER PRIMARY KEY NOT NULL,
            description TEXT NOT NULL, applied_at TEXT NOT NULL);
        CREATE TABLE app_users (name TEXT);
        INSERT INTO app_users VALUES ('ann');
        """
    )
    conn.close()
    saver = SQLiteCheckpointer(path)
    put_one(saver)
    assert versions(path) == [1]
    assert tables(path) >= TABLES | {"app_users"}
    assert saver.get_tuple(config("t")) is not None
    saver.close()


def test_migrations_run_in_order_and_a_failed_one_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    assert migrate(conn, MIGRATIONS[:1]) == 1
    conn.execute("COMMIT")
    broken = Migration(2, "broken", ("ALTER TABLE ck_threads ADD COLUMN note TEXT", "NOT SQL"))
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, (*MIGRATIONS[:1], broken))
    conn.execute("ROLLBACK")
    assert versions(path) == [1]
    columns = {r[1] for r in conn.execute("PRAGMA table_info(ck_threads)")}
    assert "note" not in columns
    v2 = Migration(2, "add a note", ("ALTER TABLE ck_threads ADD COLUMN note TEXT",))
    conn.execute("BEGIN IMMEDIATE")
    assert migrate(conn, (*MIGRATIONS[:1], v2)) == 2
    conn.execute("COMMIT")
    assert versions(path) == [1, 2]
    conn.close()
    # this checkpointkit only knows version 1: it refuses the migrated file
    with pytest.raises(SchemaVersionError):
        SQLiteCheckpointer(path).setup()
    with pytest.raises(ConfigurationError, match="expected 2"):
        migrate(sqlite3.connect(":memory:"), (MIGRATIONS[0], Migration(3, "gap", ())))


def test_a_file_of_langgraphs_sqlite_saver_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, check_same_thread=False)
    official = SqliteSaver(conn)
    official.setup()
    version = official.get_next_version(None, None)
    official.put(config("lg"), checkpoint({"a": 1}, {"a": version}), {}, {"a": version})
    saver = SQLiteCheckpointer(path)
    put_one(saver, "ours")
    assert official.get_tuple(config("lg")) is not None
    assert saver.get_tuple(config("lg")) is None  # separate tables
    assert [t.thread_id for t in saver.list_threads()] == ["ours"]
    saver.close()
    conn.close()


def test_pragmas_of_every_connection(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    saver = SQLiteCheckpointer(path, synchronous="FULL", timeout=2.5)
    put_one(saver)
    with saver._db.read() as cur:  # a connection as the saver opens them
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert cur.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
        assert cur.connection.isolation_level is None
    saver.close()
    normal = SQLiteCheckpointer(path)
    put_one(normal, "t2")
    with normal._db.read() as cur:
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    normal.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"synchronous": "OFF"},
        {"pragmas": {"journal_mode": "WAL; DROP TABLE ck_blobs"}},
        {"pragmas": {"x; --": 1}},
        {"timeout": -1},
        {"page_size": 0},
        {"ttl": 0},
        {"keep_last": 0},
    ],
)
def test_bad_options_are_configuration_errors(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteCheckpointer(tmp_path / "db.sqlite", **kwargs)  # type: ignore[arg-type]


def test_a_file_that_is_not_a_database_is_corrupt_data(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CorruptDataError, match="damaged"):
        SQLiteCheckpointer(path).setup()


def test_memory_and_given_connections(tmp_path: Path) -> None:
    with SQLiteCheckpointer.from_conn_string(":memory:") as saver:
        put_one(saver)
        assert saver.path is None
        assert saver.get_tuple(config("t")) is not None
    conn = sqlite3.connect(tmp_path / "given.sqlite", check_same_thread=False)
    conn.row_factory = sqlite3.Row  # the caller's settings do not disturb the saver
    saver = SQLiteCheckpointer(conn)
    put_one(saver)
    assert saver.path == str(tmp_path / "given.sqlite")
    assert saver.get_tuple(config("t")) is not None
    saver.close()
    assert conn.execute("SELECT count(*) FROM ck_checkpoints").fetchone()[0] == 1  # still open
    conn.close()


async def test_a_connection_bound_to_its_thread_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite")  # check_same_thread=True
    saver = SQLiteCheckpointer(conn)
    put_one(saver)
    with pytest.raises(ConfigurationError, match="check_same_thread=False"):
        await saver.aget_tuple(config("t"))
    conn.close()
