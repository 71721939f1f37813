"""Tests of the real-server harness: fixtures isolate tests, clean up, and survive crashes."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as ClusterClient

from tests.harness import _process, isolation, plugin
from tests.harness.plugin import RedisClusterEndpoint
from tests.harness.servers import (
    PostgresServer,
    RedisServer,
    ServerNotInstalledError,
    ServerStartError,
    find_postgres_bindir,
    find_redis_server,
)

REPO = Path(__file__).resolve().parents[1]


def _schema_exists(server_uri: str, schema: str) -> bool:
    with psycopg.connect(server_uri) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema])
        return row.fetchone() == (1,)


def _schema_of(uri: str) -> str:
    match = re.fullmatch(r"-csearch_path=(ckt_[0-9a-f]{12})", conninfo_to_dict(uri)["options"])
    assert match, uri
    return match.group(1)


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_uri_connects_into_its_own_fresh_schema(postgres_uri: str) -> None:
    schema = _schema_of(postgres_uri)
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT current_schema()").fetchone() == (schema,)
        assert conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s",
            [schema],
        ).fetchone() == (0,)
        conn.execute("CREATE TABLE probe (id int)")
        assert conn.execute(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'probe'"
        ).fetchall() == [(schema,)]


@pytest.mark.parametrize("run", [1, 2])
def test_postgres_tests_do_not_see_each_others_tables(postgres_uri: str, run: int) -> None:
    # Both runs create the same table: the second would fail if the first's leaked.
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT to_regclass('harness_probe')").fetchone() == (None,)
        conn.execute("CREATE TABLE harness_probe (run int)")
        conn.execute("INSERT INTO harness_probe VALUES (%s)", [run])


def test_postgres_schema_scopes_are_isolated_and_dropped(postgres_server_uri: str) -> None:
    with isolation.postgres_schema(postgres_server_uri) as uri_a:
        with psycopg.connect(uri_a) as conn:
            conn.execute("CREATE TABLE shared_name (v text)")
            conn.execute("INSERT INTO shared_name VALUES ('a')")
        with (
            isolation.postgres_schema(postgres_server_uri) as uri_b,
            psycopg.connect(uri_b) as conn,
        ):
            assert conn.execute("SELECT to_regclass('shared_name')").fetchone() == (None,)
            conn.execute("CREATE TABLE shared_name (v text)")
        assert not _schema_exists(postgres_server_uri, _schema_of(uri_b))
        with psycopg.connect(uri_a) as conn:
            assert conn.execute("SELECT v FROM shared_name").fetchall() == [("a",)]
    assert not _schema_exists(postgres_server_uri, _schema_of(uri_a))


def test_postgres_schema_drop_ends_a_connection_the_test_left_blocking(
    postgres_server_uri: str,
) -> None:
    with isolation.postgres_schema(postgres_server_uri, drop_lock_timeout="200ms") as uri:
        leaked = psycopg.connect(uri)
        leaked.execute("CREATE TABLE t (id int)")
        leaked.execute("SELECT * FROM t")  # left idle in transaction, holding a lock on t
    try:
        assert not _schema_exists(postgres_server_uri, _schema_of(uri))
        with pytest.raises(psycopg.OperationalError):
            leaked.execute("SELECT 1")
    finally:
        leaked.close()


def test_postgres_schema_keeps_the_options_already_in_the_uri() -> None:
    uri = isolation.with_search_path(
        "postgresql://u@h:5/db?sslmode=disable&options=-cstatement_timeout%3D5s", "ckt_x", "app"
    )
    params = conninfo_to_dict(uri)
    assert params["options"] == "-cstatement_timeout=5s -csearch_path=ckt_x"
    assert (params["sslmode"], params["application_name"], params["dbname"]) == (
        "disable",
        "app",
        "db",
    )
    with pytest.raises(ValueError, match="postgresql:// URI"):
        isolation.with_search_path("host=h dbname=db", "ckt_x")


def test_postgres_database_uri_is_a_fresh_database_dropped_afterwards(
    postgres_server_uri: str, postgres_database_uri: str
) -> None:
    dbname = conninfo_to_dict(postgres_database_uri)["dbname"]
    assert re.fullmatch(r"ckt_db_[0-9a-f]{12}", dbname)
    with psycopg.connect(postgres_database_uri) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (dbname,)
    # The scope drops its database even with a connection still open on it.
    with isolation.postgres_database(postgres_server_uri) as uri:
        left_open = psycopg.connect(uri)
    left_open.close()
    with psycopg.connect(postgres_server_uri) as conn:
        other = conninfo_to_dict(uri)["dbname"]
        assert conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [other]
        ).fetchone() == (0,)


@pytest.mark.slow
def test_postgres_factory_server_restarts_and_survives_sigkill(postgres_factory) -> None:
    server = postgres_factory()
    assert server.uri == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (1)")

    first_pid = server.pid
    server.restart()
    assert server.pid != first_pid
    assert not _process._group_alive(first_pid)
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute("INSERT INTO kept VALUES (2)")  # acknowledged, then the crash

    second_pid = server.pid
    server.kill()
    assert not _process._group_alive(second_pid)  # backends died with the postmaster
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.uri, connect_timeout=2).close()

    server.start()
    with psycopg.connect(server.uri) as conn:
        assert conn.execute("SELECT v FROM kept ORDER BY v").fetchall() == [(1,), (2,)]


# --------------------------------------------------------------------------- Redis


def test_redis_prefix_fixture_gives_a_unique_prefix(redis_url: str, redis_prefix: str) -> None:
    assert re.fullmatch(r"ckt:[0-9a-f]{8}:", redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys(f"{redis_prefix}*") == []
        client.set(f"{redis_prefix}k", "v")
        assert client.get(f"{redis_prefix}k") == b"v"
    finally:
        client.close()


def test_redis_prefix_cleanup_deletes_its_keys_and_only_those(redis_server_url: str) -> None:
    client = redis.Redis.from_url(redis_server_url)
    outside = f"ckt-harness-test:{os.getpid()}:{time.time_ns()}"
    try:
        client.set(outside, "survives")
        with isolation.redis_prefix(redis_server_url) as keep:
            client.set(f"{keep}k", "survives")
            with isolation.redis_prefix(redis_server_url) as prefix:
                sibling = f"{prefix[:-1]}-sibling"  # same start, but not under "<prefix>"
                client.set(sibling, "survives")
                pipe = client.pipeline(transaction=False)
                for i in range(2500):  # several SCAN pages and unlink batches
                    pipe.set(f"{prefix}{i}", i)
                pipe.hset(f"{prefix}hash", "f", "v")
                pipe.execute()
            assert client.keys(f"{prefix}*") == []
            assert client.get(sibling) == b"survives"
            assert client.get(f"{keep}k") == b"survives"
            client.delete(sibling)
        assert client.keys(f"{keep}*") == []
        assert client.get(outside) == b"survives"
    finally:
        client.delete(outside)
        client.close()


def test_redis_prefix_cleanup_refuses_an_empty_prefix(redis_server_url: str) -> None:
    with pytest.raises(ValueError, match="empty prefix"):
        isolation.delete_redis_prefix(redis_server_url, "")


@pytest.mark.slow
def test_redis_factory_aof_keeps_an_acknowledged_key_across_sigkill(redis_factory) -> None:
    server = redis_factory(appendonly=True)
    assert server.uri == f"redis://127.0.0.1:{server.port}/0"
    client = redis.Redis.from_url(server.uri)
    try:
        assert client.set("acknowledged", "yes") is True
        pid = server.pid
        server.kill()
        assert not _process._pid_alive(pid)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert client.get("acknowledged") == b"yes"
    finally:
        client.close()


@pytest.mark.slow
def test_redis_cluster_takes_writes_on_three_masters(
    redis_cluster: RedisClusterEndpoint, redis_cluster_prefix: str
) -> None:
    client = ClusterClient(
        startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
    )
    try:
        info = client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_size"]) == 3
        assert len(client.get_primaries()) == 3
        # Write until every master holds one of the keys.
        keys_by_node: dict[str, str] = {}
        for i in range(1000):
            key = f"{redis_cluster_prefix}{i}"
            keys_by_node.setdefault(client.get_node_from_key(key).name, key)
            if len(keys_by_node) == 3:
                break
        for key in keys_by_node.values():
            assert client.set(key, key) is True
            assert client.get(key) == key.encode()
    finally:
        client.close()
    from_url = ClusterClient.from_url(redis_cluster.uri)
    try:
        assert from_url.get(next(iter(keys_by_node.values()))) is not None
        with isolation.redis_prefix(redis_cluster.uri, cluster=True) as prefix:
            for i in range(50):
                from_url.set(f"{prefix}{i}", i)
        assert list(from_url.scan_iter(match=f"{prefix}*")) == []
    finally:
        from_url.close()


# --------------------------------------------------------------------------- servers


def test_server_start_failure_reports_the_log_tail() -> None:
    server = RedisServer(extra_args=["--no-such-directive", "x"])
    with pytest.raises(ServerStartError, match=r"(?s)exited with code.*no-such-directive"):
        server.start()
    assert not server.running
    assert server._workdir is None  # the failed first start cleaned up its directory

    with pytest.raises(ServerStartError, match=r"(?s)log:.*shared_buffers"):
        PostgresServer(settings={"shared_buffers": "plenty"}).start()


def test_close_leaves_no_process_and_no_directory() -> None:
    with RedisServer() as server:
        pid, workdir = server.pid, server.workdir
        assert pid is not None
        assert workdir.is_dir()
        assert server.command("PING") == "PONG"
    assert not _process._pid_alive(pid)
    assert not workdir.exists()
    server.close()  # twice is fine


@pytest.mark.slow
@pytest.mark.parametrize("pdeathsig", [True, False], ids=["pdeathsig", "sweep"])
def test_a_killed_test_process_leaves_no_orphan_server(monkeypatch, pdeathsig: bool) -> None:
    if pdeathsig and not _process._SETPRIV:
        pytest.skip("setpriv (util-linux) is not installed: only the sweep guards against orphans")
    script = textwrap.dedent(
        f"""
        import time
        from tests.harness import _process
        from tests.harness.servers import PostgresServer, RedisServer
        if not {pdeathsig}:
            _process._SETPRIV = None
        pg, rd = PostgresServer().start(), RedisServer().start()
        print(pg.pid, rd.pid, pg.workdir, rd.workdir, flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        pg_pid, redis_pid, pg_dir, redis_dir = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)  # no atexit, no pytest teardown
        child.wait()
        child.stdout.close()
    # Each server leads its own process group; zombies awaiting init's reaping don't count.
    groups = [int(pg_pid), int(redis_pid)]
    if pdeathsig:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_process._group_alive, groups)):
            time.sleep(0.05)
        assert not any(map(_process._group_alive, groups))
    else:
        assert all(map(_process._group_alive, groups))  # orphans, until the sweep
    # The next server start sweeps the dead process's directories and kills what runs there.
    monkeypatch.setattr(_process, "_swept", False)
    _process._sweep_stale_workdirs()
    assert not any(map(_process._group_alive, groups))
    assert not Path(pg_dir).exists()
    assert not Path(redis_dir).exists()


# --------------------------------------------------------------------------- plugin rules


def test_unavailable_skips_locally_and_fails_under_ci(monkeypatch) -> None:
    def outcome() -> pytest.ExceptionInfo[BaseException]:
        # Catch both: an escaping skip would otherwise just skip this test.
        with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as info:
            plugin.unavailable("no server", "apt-get install -y postgresql")
        return info

    monkeypatch.delenv("CI", raising=False)
    skipped = outcome()
    assert skipped.type is pytest.skip.Exception
    assert str(skipped.value) == "no server; to fix: apt-get install -y postgresql"
    monkeypatch.setenv("CI", "true")
    failed = outcome()
    assert failed.type is pytest.fail.Exception
    assert str(failed.value).startswith("no server; to fix: apt-get install -y postgresql (CI=true")


def test_missing_binaries_name_the_install_command() -> None:
    error = ServerNotInstalledError("redis-server not found", "redis-server")
    assert error.fix.endswith("apt-get install -y redis-server")
    assert "to install: " in str(error)


@pytest.mark.slow
@pytest.mark.parametrize(("ci", "outcome"), [("", "2 skipped"), ("true", "2 errors")])
def test_unreachable_servers_skip_or_fail_the_tests(tmp_path: Path, ci: str, outcome: str) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        "def test_pg(postgres_uri): pass\ndef test_redis(redis_prefix): pass\n"
    )
    dead = _process.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CI": ci,
        plugin.ENV_POSTGRES: f"postgresql://postgres@127.0.0.1:{dead}/postgres",
        plugin.ENV_REDIS: f"redis://127.0.0.1:{dead}/0",
    }
    plugins = ["-p", "tests.harness.plugin", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-rsE"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "checkpointkit servers: postgres=$CHECKPOINTKIT_TEST_POSTGRES_URI" in result.stdout
    pg_uri = env[plugin.ENV_POSTGRES]
    assert f"{plugin.ENV_POSTGRES}={pg_uri!r} is not usable" in result.stdout
    assert f"to fix: fix or unset {plugin.ENV_REDIS}" in result.stdout


# --------------------------------------------------------------------------- tools


def _load_ensure_servers():
    spec = importlib.util.spec_from_file_location(
        "ensure_servers", REPO / "tools/ensure_servers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ensure_servers_prints_one_line_when_all_is_installed(monkeypatch) -> None:
    try:
        find_postgres_bindir(), find_redis_server()
    except ServerNotInstalledError as exc:
        plugin.unavailable(exc.reason, exc.fix)
    for name in (plugin.ENV_POSTGRES, plugin.ENV_REDIS, plugin.ENV_REDIS_CLUSTER):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "tools/ensure_servers.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ensure_servers: ok (postgres in ")
    assert result.stdout.count("\n") == 1
    assert elapsed < 5  # well under 1 s when idle; generous for a loaded machine


def test_ensure_servers_prints_the_install_command_when_binaries_are_missing(
    monkeypatch, capsys
) -> None:
    tool = _load_ensure_servers()

    def missing() -> Path:
        raise ServerNotInstalledError("not here", "postgresql")

    for name in (plugin.ENV_POSTGRES, plugin.ENV_REDIS, plugin.ENV_REDIS_CLUSTER):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tool, "find_postgres_bindir", missing)
    assert tool.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "apt-get install -y postgresql\n" in err
    assert plugin.ENV_POSTGRES in err
