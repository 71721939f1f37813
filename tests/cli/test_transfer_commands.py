"""export / import and copy, end to end: exact round trips, resumption, verification."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from checkpointkit.connect import open_checkpointer
from tests.cli.conftest import Run, Store
from tests.cli.graphs import fill, snapshot


def assert_same_threads(source_url: str, target_url: str, threads: tuple[str, ...]) -> None:
    """Every checkpoint tuple of every thread is equal on both sides."""
    with open_checkpointer(source_url) as source, open_checkpointer(target_url) as target:
        for thread_id in threads:
            expected = snapshot(source, thread_id)
            assert expected
            assert snapshot(target, thread_id) == expected, thread_id


def _report(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["ok"], report
    return report


def test_export_import_round_trips_exactly(
    store: Store, other_url: str, run: Run, tmp_path: Path
) -> None:
    path = tmp_path / "threads.jsonl"
    exported = run("export", store.url, "chat", "nested", "-o", str(path))
    assert exported.code == 0, exported.err
    assert "exported 2 thread(s)" in exported.err
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert (header["format"], header["version"]) == ("checkpointkit-export", 1)
    assert header["threads"] == ["chat", "nested"]
    assert json.loads(lines[-1])["kind"] == "end"

    report = _report(run("import", other_url, str(path), "--json"))
    assert [t["status"] for t in report["threads"]] == ["copied", "copied"]
    assert_same_threads(store.url, other_url, store.filled.threads)

    again = _report(run("import", other_url, str(path), "--json"))
    assert [t["status"] for t in again["threads"]] == ["skipped", "skipped"]
    assert_same_threads(store.url, other_url, store.filled.threads)


def test_export_to_stdout_and_import_from_stdin(store: Store, tmp_path: Path, run: Run) -> None:
    exported = run("export", store.url)  # every thread, to stdout
    assert exported.code == 0, exported.err
    target = f"sqlite:///{tmp_path}/from-stdin.sqlite"
    result = run("import", target, "-", stdin=exported.out)
    assert result.code == 0, result.err
    assert "all verified" in result.out
    assert_same_threads(store.url, target, store.filled.threads)


@pytest.fixture
def export_file(tmp_path: Path, run: Run) -> Path:
    """An export file of a SQLite store with the two threads."""
    url = f"sqlite:///{tmp_path}/src.sqlite"
    with open_checkpointer(url) as saver:
        fill(saver)
    path = tmp_path / "export.jsonl"
    assert run("export", url, "-o", str(path)).code == 0
    return path


def _rewrite(path: Path, edit: Any) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = path.with_name("edited.jsonl")
    out.write_text("".join(edit(lines)), encoding="utf-8")
    return out


def _with_version(lines: list[str], version: Any) -> list[str]:
    header = json.loads(lines[0])
    header["version"] = version
    return [json.dumps(header) + "\n", *lines[1:]]


def test_unknown_format_version_is_refused(export_file: Path, tmp_path: Path, run: Run) -> None:
    target = f"sqlite:///{tmp_path}/target.sqlite"
    newer = _rewrite(export_file, lambda lines: _with_version(lines, 2))
    result = run("import", target, str(newer))
    assert result.code == 1
    assert result.err.splitlines() == [
        "checkpointkit: error: export file format version 2 is newer than this checkpointkit "
        "reads (version 1); upgrade checkpointkit to import it"
    ]
    with open_checkpointer(target) as saver:
        assert list(saver.list(None)) == []  # nothing written

    bogus = _rewrite(export_file, lambda lines: _with_version(lines, "one"))
    assert "invalid format version 'one'" in run("import", target, str(bogus)).err
    other = _rewrite(export_file, lambda lines: ['{"format": "other", "version": 1}\n'])
    assert "not a checkpointkit export file" in run("import", target, str(other)).err


def test_damaged_and_truncated_files_are_refused(
    export_file: Path, tmp_path: Path, run: Run
) -> None:
    target = f"sqlite:///{tmp_path}/target.sqlite"

    def damage(lines: list[str]) -> list[str]:
        record = json.loads(lines[2])
        record["metadata"]["step"] = 99
        return [*lines[:2], json.dumps(record) + "\n", *lines[3:]]

    damaged = run("import", target, str(_rewrite(export_file, damage)))
    assert damaged.code == 1
    assert "does not match its checksum" in damaged.err

    def truncate(lines: list[str]) -> list[str]:
        return lines[:-3]  # the second thread's closing line and the end line are gone

    cut = run("import", target, str(_rewrite(export_file, truncate)))
    assert cut.code == 1
    assert "line" in cut.err
    with open_checkpointer(target) as saver:  # the first, whole thread got in
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"chat"}

    garbage = run("import", target, str(_rewrite(export_file, lambda ls: [ls[0], "{oops\n"])))
    assert garbage.code == 1
    assert "line 2: not JSON" in garbage.err
    missing = run("import", target, str(tmp_path / "absent.jsonl"))
    assert missing.code == 1
    assert "absent.jsonl" in missing.err


def test_copy_from_langgraph_sqlite_saver(
    official_sqlite: Store, backend_url: str, run: Run
) -> None:
    report = _report(run("copy", official_sqlite.url, backend_url, "--json"))
    assert {t["thread_id"]: t["status"] for t in report["threads"]} == {
        "chat": "copied",
        "nested": "copied",
    }
    assert all(t["source"] == t["target"] for t in report["threads"])
    assert_same_threads(official_sqlite.url, backend_url, official_sqlite.filled.threads)
    # the copy is a working checkpointkit thread: the fork branch is there, its interrupt too
    fork = json.loads(run("show", backend_url, "chat", official_sqlite.filled.fork, "--json").out)
    assert fork["source"] == "update"
    assert fork["interrupts"]


def test_copy_from_langgraph_postgres_saver(
    official_postgres: Store, backend_url: str, run: Run
) -> None:
    report = _report(run("copy", official_postgres.url, backend_url, "--json", "--quiet"))
    assert [t["status"] for t in report["threads"]] == ["copied", "copied"]
    assert_same_threads(official_postgres.url, backend_url, official_postgres.filled.threads)
    rerun = _report(run("copy", official_postgres.url, backend_url, "--json"))
    assert [t["status"] for t in rerun["threads"]] == ["skipped", "skipped"]


class _Killed(KeyboardInterrupt):
    """Stands for the copy being killed mid-way (Ctrl-C)."""


def test_interrupted_copy_resumes_without_duplicates(
    official_sqlite: Store, backend_url: str, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = official_sqlite.url
    # a first run copies half of the threads
    half = _report(run("copy", source, backend_url, "--thread", "chat", "--json"))
    assert [t["thread_id"] for t in half["threads"]] == ["chat"]

    # a second run dies mid-thread: after a put whose writes were not stored yet
    with open_checkpointer(backend_url) as probe:
        saver_class = type(probe)
    original = saver_class.put_writes
    calls = {"n": 0}

    def dying_put_writes(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Killed
        original(self, *args, **kwargs)

    monkeypatch.setattr(saver_class, "put_writes", dying_put_writes)
    killed = run("copy", source, backend_url)
    assert killed.code == 130
    assert "interrupted" in killed.err
    monkeypatch.undo()
    with open_checkpointer(source) as src, open_checkpointer(backend_url) as dst:
        partial = snapshot(dst, "nested")
        assert 0 < len(partial) <= len(snapshot(src, "nested"))
        assert partial != snapshot(src, "nested")

    # the rerun skips the complete thread, completes the other, and verifies both
    rerun = _report(run("copy", source, backend_url, "--json"))
    statuses = {t["thread_id"]: t["status"] for t in rerun["threads"]}
    assert statuses == {"chat": "skipped", "nested": "resumed"}
    nested = next(t for t in rerun["threads"] if t["thread_id"] == "nested")
    assert 0 < nested["written"] < nested["source"]["checkpoints"]
    assert_same_threads(source, backend_url, official_sqlite.filled.threads)
    check = _report(run("copy", source, backend_url, "--check", "--json"))
    assert [t["status"] for t in check["threads"]] == ["checked", "checked"]


def test_copy_refuses_to_overwrite_a_different_thread(
    official_sqlite: Store, tmp_path: Path, run: Run
) -> None:
    target = f"sqlite:///{tmp_path}/diverged.sqlite"
    with open_checkpointer(target) as saver:
        fill(saver)  # same thread ids, other checkpoints
    before = run("copy", official_sqlite.url, target, "--check")
    assert before.code == 1
    assert "differs" in before.err
    result = run("copy", official_sqlite.url, target, "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert {t["status"] for t in report["threads"]} == {"failed"}
    assert "left untouched" in report["threads"][0]["error"]
    assert "checkpointkit: thread chat:" in result.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_copy_draws_a_progress_bar_on_a_terminal_only(
    official_sqlite: Store, tmp_path: Path
) -> None:
    from checkpointkit.cli import main

    out, err = io.StringIO(), _Terminal()
    code = main(
        ["copy", official_sqlite.url, f"sqlite:///{tmp_path}/a.sqlite"], stdout=out, stderr=err
    )
    assert code == 0
    assert "threads" in err.getvalue()
    assert "all verified" in out.getvalue()
    assert "chat" in out.getvalue()

    quiet = _Terminal()
    code = main(
        ["copy", official_sqlite.url, f"sqlite:///{tmp_path}/b.sqlite", "--quiet"],
        stdout=io.StringIO(),
        stderr=quiet,
    )
    assert code == 0
    assert quiet.getvalue() == ""
