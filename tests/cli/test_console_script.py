"""The installed ``checkpointkit`` console script, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Store

SCRIPT = Path(sys.executable).parent / "checkpointkit"


def checkpointkit(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: install the package (pip install -e '.[all,dev]')")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [str(SCRIPT), *argv], input=stdin, capture_output=True, text=True, timeout=60, env=env
    )


def test_copy_export_and_import_through_the_script(official_sqlite: Store, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path}/copied.sqlite"
    copied = checkpointkit("copy", official_sqlite.url, target, "--json")
    assert copied.returncode == 0, copied.stderr
    assert copied.stderr == ""  # no progress bar: stderr is not a terminal
    report = json.loads(copied.stdout)
    assert report["ok"]
    assert {t["thread_id"] for t in report["threads"]} == {"chat", "nested"}

    exported = checkpointkit("export", target, "chat")
    assert exported.returncode == 0, exported.stderr
    imported = checkpointkit(
        "import", f"sqlite:///{tmp_path}/imported.sqlite", "-", stdin=exported.stdout
    )
    assert imported.returncode == 0, imported.stderr
    assert "all verified" in imported.stdout

    threads = checkpointkit("threads", f"sqlite:///{tmp_path}/imported.sqlite", "--json")
    assert [t["thread_id"] for t in json.loads(threads.stdout)] == ["chat"]


def test_script_errors_are_one_line_with_the_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "checkpointkit-export", "version": 7}\n', encoding="utf-8")
    result = checkpointkit("import", f"sqlite:///{tmp_path}/t.sqlite", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "checkpointkit: error: export file format version 7 is newer than this checkpointkit "
        "reads (version 1); upgrade checkpointkit to import it"
    ]
    usage = checkpointkit("threads", "mysql://u:pw@host/db")
    assert usage.returncode == 2
    assert usage.stderr.startswith("checkpointkit: error: unknown checkpointer URL scheme")
    assert "Traceback" not in usage.stderr
