"""``make demo``: run ``python -m checkpointkit.demo`` as a user would and check what it says.

One run in a fresh working directory (with a stale ``demo-data/`` left by a
"previous run", which the demo must replace); each section's key facts are
checked in the output, then the files it wrote are opened.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from checkpointkit.picture import short_id


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    cwd = tmp_path_factory.mktemp("demo")
    stale = cwd / "demo-data"
    stale.mkdir()
    (stale / "demo.sqlite").write_bytes(b"not a database")
    done = subprocess.run(
        [sys.executable, "-m", "checkpointkit.demo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"demo failed:\n{done.stdout}\n{done.stderr}"
    assert done.stderr == "", done.stderr
    return done.stdout, cwd


def _section(output: str, number: int) -> str:
    match = re.search(rf"^== {number}\. .*?(?=^== |\Z)", output, re.MULTILINE | re.DOTALL)
    assert match, f"section {number} is missing from:\n{output}"
    return match.group(0)


def test_conversation_memory(demo: tuple[str, Path]) -> None:
    text = _section(demo[0], 1)
    assert "you: my name is Ada" in text
    assert "bot: Your name is Ada." in text


def test_interrupt_and_resume(demo: tuple[str, Path]) -> None:
    text = _section(demo[0], 2)
    assert "paused: Really forget your name? (next=('confirm',))" in text
    assert 'resumed with Command(resume="yes"): OK, I forgot your name.' in text
    assert "bot: I don't know your name." in text


def test_crash_and_resume(demo: tuple[str, Path]) -> None:
    text = _section(demo[0], 3)
    pid = re.search(r"fetch node sleeping \d+ s in process (\d+)", text)
    assert pid, text
    assert f"killed child process {pid[1]} with SIGKILL (exit code -9)" in text
    assert int(pid[1]) != os.getpid()
    assert "next=('fetch',); 2 messages of the interrupted turn were saved" in text
    resumed = "resumed with invoke(None, config): bot: Found 3 notes on 'LangGraph checkpointers'."
    assert resumed in text


def test_history(demo: tuple[str, Path]) -> None:
    text = _section(demo[0], 4)
    count = int(re.search(r"thread 'demo': (\d+) checkpoints", text)[1])  # type: ignore[index]
    rows = re.findall(r"^  ([0-9a-f]{8})  +(-?\d+) (\w+)", text, re.MULTILINE)
    assert len(rows) == count == 20
    steps = [int(step) for _, step, _ in rows]
    assert steps == sorted(steps, reverse=True)  # newest first ...
    assert steps[-1] == -1  # ... down to the input checkpoint
    assert {source for *_, source in rows} == {"input", "loop"}


def test_fork_diverges(demo: tuple[str, Path]) -> None:
    text = _section(demo[0], 5)
    assert re.search(r"fork_thread copied \d+ checkpoints: the fork keeps its history", text)
    assert "[demo-fork] bot: Your name is Ada." in text
    assert "[demo] bot: I don't know your name." in text


def test_picture_and_threads(demo: tuple[str, Path]) -> None:
    output, cwd = demo
    text = _section(output, 6)
    assert "on 2 branches (demo, demo-fork)" in text
    for name in ("history.mmd", "history.svg", "history.png"):
        assert f"wrote demo-data/{name}" in text
        assert (cwd / "demo-data" / name).stat().st_size > 0
    threads = _section(output, 7)
    assert re.search(r"demo +\d+ checkpoints", threads)
    assert re.search(r"demo-fork +\d+ checkpoints", threads)


def test_ends_with_cli_commands(demo: tuple[str, Path]) -> None:
    output = demo[0]
    tail = output[output.index("== inspect what the demo wrote") :]
    assert "checkpointkit history sqlite:///demo-data/demo.sqlite demo\n" in tail
    assert "checkpointkit threads sqlite:///demo-data/demo.sqlite\n" in tail
    assert re.search(r"done in \d+\.\d s\n\Z", output)


def test_the_files_it_wrote(demo: tuple[str, Path]) -> None:
    cwd = demo[1]
    with SQLiteCheckpointer.from_conn_string(str(cwd / "demo-data" / "demo.sqlite")) as saver:
        assert {t.thread_id for t in saver.list_threads()} == {"demo", "demo-fork"}
        ids = {
            str(t.config["configurable"]["checkpoint_id"])
            for thread in ("demo", "demo-fork")
            for t in saver.list({"configurable": {"thread_id": thread}})
        }
        last = saver.get_tuple({"configurable": {"thread_id": "demo"}})
        assert last is not None
        assert last.checkpoint["channel_values"]["messages"][-1].content == (
            "I don't know your name."
        )
    mermaid = (cwd / "demo-data" / "history.mmd").read_text()
    svg = (cwd / "demo-data" / "history.svg").read_text()
    for cid in ids:
        assert short_id(cid) in mermaid
        assert short_id(cid) in svg


def test_the_printed_commands_run(demo: tuple[str, Path], tmp_path: Path) -> None:
    """Every CLI command the demo prints works on what it wrote (on a copy of it)."""
    pytest.importorskip("checkpointkit.cli")
    output, cwd = demo
    shutil.copytree(cwd / "demo-data", tmp_path / "demo-data")
    tail = output[output.index("== inspect what the demo wrote") :]
    commands = re.findall(r"^  checkpointkit (.+)$", tail, re.MULTILINE)
    assert len(commands) >= 6
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "checkpointkit.cli", *shlex.split(command)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    for command, run in zip(commands, runs, strict=True):
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0, f"checkpointkit {command} failed:\n{out}"
    assert (tmp_path / "demo-data" / "demo.jsonl").stat().st_size > 0
