"""Opening checkpointers by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.sqlite import AsyncSQLiteCheckpointer, SQLiteCheckpointer
from checkpointkit.connect import aopen_checkpointer, open_checkpointer, redact
from checkpointkit.errors import ConfigurationError


def test_sqlite_relative_and_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_checkpointer("sqlite:///rel.db") as saver:
        assert isinstance(saver, SQLiteCheckpointer)
    assert (tmp_path / "rel.db").exists()
    with open_checkpointer(f"sqlite:///{tmp_path}/abs.db") as saver:
        assert isinstance(saver, SQLiteCheckpointer)
    assert (tmp_path / "abs.db").exists()


async def test_async_open(tmp_path: Path) -> None:
    async with aopen_checkpointer(f"sqlite:///{tmp_path}/a.db") as saver:
        assert isinstance(saver, AsyncSQLiteCheckpointer)
    async with aopen_checkpointer("memory://") as saver:
        assert isinstance(saver, MemoryCheckpointer)


@pytest.mark.parametrize("url", ["", "nope", "ftp://host/x", "sqlite://", "sqlite:///"])
def test_bad_urls_are_typed_errors(url: str) -> None:
    with pytest.raises(ConfigurationError), open_checkpointer(url):
        pass


def test_passwords_are_redacted() -> None:
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
