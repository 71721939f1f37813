"""Regression tests of the bugs the reliability suite found, one small reproduction each.

Each test names the bug it pins down. Most run on every backend: a bug
found in one backend is a rule for all of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.sqlite import SQLiteCheckpointer
from checkpointkit.errors import CheckpointKitError, ConfigurationError
from tests.contract.helpers import checkpoint, config
from tests.reliability._backends import saver_from_spec, spec_for
from tests.reliability._hostile import VICTIM, plant_victim, snapshot

ITEMS = [f"item {i}" for i in range(20)]  # the same objects at every step: stored as deltas


def put_list(
    saver: Any, thread_id: str, parent: str | None, n: int, versions: dict[str, Any]
) -> str:
    """Put a checkpoint whose list channel ``items`` holds the first `n` items; return its id."""
    versions["items"] = saver.get_next_version(versions.get("items"), None)
    cp = checkpoint({"items": ITEMS[:n]}, dict(versions))
    stored = saver.put(
        config(thread_id, checkpoint_id=parent), cp, {"step": n}, {"items": versions["items"]}
    )
    return str(stored["configurable"]["checkpoint_id"])


def test_a_read_keeps_the_cached_lists_it_relied_on(tmp_path: Path) -> None:
    """Bug 1: a get_tuple raced puts of the same channel by other OS threads (SQLite).

    `chain_requests` fetched no delta-chain rows for list versions the
    process's cache held; if puts from other threads pushed those versions out
    of the cache before `decode_tuple` looked again, the read failed with
    "stored as a delta on version ..., which is missing".
    """
    saver = SQLiteCheckpointer(tmp_path / "db.sqlite")
    versions: dict[str, Any] = {}
    first = put_list(saver, "t", None, 1, versions)
    second = put_list(saver, "t", first, 2, versions)  # a delta on the first; cached
    original = saver._core.chain_requests
    raced = []

    def racing(blobs: Any) -> Any:
        wanted = original(blobs)  # nothing: version 2 is cached
        raced.append(wanted)

        def more() -> None:  # enough puts to push version 2 out of the cache
            parent = second
            for n in range(3, 12):
                parent = put_list(saver, "t", parent, n, versions)

        writer = threading.Thread(target=more)
        writer.start()
        writer.join()
        return wanted

    saver._core.chain_requests = racing  # type: ignore[method-assign]
    try:
        tup = saver.get_tuple(config("t", checkpoint_id=second))
    finally:
        saver._core.chain_requests = original  # type: ignore[method-assign]
    assert raced == [{}], "the read did not go through chain_requests: the race was not run"
    assert tup is not None
    assert tup.checkpoint["channel_values"]["items"] == ITEMS[:2]
    saver.close()


def test_delta_channel_history_of_a_cached_list_delta(saver: Any) -> None:
    """A DeltaChannel seed stored as a list delta, held in the cache (SQLite failed).

    SQLite fetched no chain rows for a seed version its process held, but
    `StorageCore.delta_history` rebuilt the seed from rows only: "stored as a
    delta on version ..., which is missing".
    """
    versions: dict[str, Any] = {}
    parent = None
    for step in range(4):
        values = {"ch": _DeltaSnapshot(ITEMS[: step + 1])} if step < 3 else {}
        new: dict[str, Any] = {}
        if values:
            versions["ch"] = new["ch"] = saver.get_next_version(versions.get("ch"), None)
        cp = checkpoint(values, dict(versions))
        stored = saver.put(config("t", checkpoint_id=parent), cp, {"step": step}, new)
        parent = stored["configurable"]["checkpoint_id"]
    history = saver.get_delta_channel_history(config=stored, channels=["ch"])
    assert history == {"ch": {"writes": [], "seed": _DeltaSnapshot(ITEMS[:3])}}


def test_non_string_channels_and_task_ids_are_configuration_errors(saver: Any) -> None:
    """Bug 2: put_writes stored, or failed untyped on, non-string channels and task ids."""
    stored = saver.put(config("t"), checkpoint({}, {}), {}, {})
    for channel, task_id in (([], "t"), ("c", []), (None, "t"), ("c", None), (b"x", "t")):
        with pytest.raises(ConfigurationError):
            saver.put_writes(stored, [(channel, 1)], task_id)
    assert saver.get_tuple(stored).pending_writes == []


@pytest.mark.parametrize("channel", [("t",), None, 3, b"c"])
def test_a_non_string_channel_name_is_refused_by_put(saver: Any, channel: Any) -> None:
    """A tuple channel name was stored, and then every read of the store failed.

    The skeleton kept the tuple as a key; msgpack read it back as a list, an
    unhashable key: `list(None)` raised CorruptDataError for every thread.
    """
    plant_victim(saver)
    before = snapshot(saver)
    versions = {channel: saver.get_next_version(None, None)}
    with pytest.raises(ConfigurationError, match="channel names must be strings"):
        saver.put(config("t"), checkpoint({channel: 1}, versions), {}, versions)
    assert len(list(saver.list(None))) == 2
    assert snapshot(saver) == before


@pytest.mark.parametrize("target", ["", None, [], b"\x00", "a\x00b", "\ud800"])
def test_copy_and_fork_refuse_unusable_target_thread_ids(saver: Any, target: Any) -> None:
    """A fork into "" (or None, a list...) made a thread no config can name.

    Memory stored it under ``str(target)``: ``""`` then failed every read of
    the fork with MissingThreadIdError. The targets go through
    `check_thread_id`, as a config's thread id goes through `thread_id_of`.
    """
    plant_victim(saver)
    before = snapshot(saver)
    latest = before[0][0]
    with pytest.raises(ConfigurationError):
        saver.fork_thread(latest, target)
    with pytest.raises(ConfigurationError):
        saver.copy_thread(VICTIM, target)
    assert [t.thread_id for t in saver.list_threads()] == [VICTIM]
    assert snapshot(saver) == before


BAD_IDS = ["\x00", "victim\x00", "\ud800", "victim\udfff"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=["nul", "victim-nul", "surrogate", "victim-surrogate"])
def test_thread_and_run_id_arguments_with_nul_or_lone_surrogates(saver: Any, bad: str) -> None:
    """delete_thread / prune / copy_thread / delete_for_runs with ids no backend stores.

    PostgreSQL raised psycopg.DataError (NUL) and UnicodeEncodeError (lone
    surrogate), Redis UnicodeEncodeError: each must do nothing, or raise a
    `CheckpointKitError`; the victim thread stays as it is.
    """
    plant_victim(saver)
    before = snapshot(saver)
    for call in (
        lambda: saver.delete_thread(bad),
        lambda: saver.prune([bad]),
        lambda: saver.prune([bad], strategy="delete"),
        lambda: saver.copy_thread(bad, "copy"),
        lambda: saver.delete_for_runs([bad]),
        lambda: saver.delete_for_runs(["run", bad]),
    ):
        try:
            call()
        except CheckpointKitError:
            pass
    assert snapshot(saver) == before


@pytest.mark.parametrize("limit", [True, False, -1, 1.5, "3"])
def test_a_limit_that_is_not_a_non_negative_int_is_refused(saver: Any, limit: Any) -> None:
    """``list(limit=True)`` reached PostgreSQL: untyped DatatypeMismatch.

    A bool may count as the int it is (memory, Redis) or be refused (SQLite).
    """
    plant_victim(saver)
    for scope in (None, config(VICTIM)):
        if isinstance(limit, bool):
            try:
                assert len(list(saver.list(scope, limit=limit))) == int(limit)
            except ConfigurationError:
                pass
        else:
            with pytest.raises(ConfigurationError):
                list(saver.list(scope, limit=limit))


def test_delta_channel_history_of_non_string_channels(saver: Any) -> None:
    """PostgreSQL passed a mixed list of channels to psycopg: untyped DataError.

    No channel has such a name: an empty history, or a ConfigurationError.
    """
    plant_victim(saver)
    try:
        history = saver.get_delta_channel_history(
            config=config(VICTIM), channels=["secret", 1.5, None, b"secret"]
        )
    except ConfigurationError:
        return
    assert history[1.5] == history[None] == history[b"secret"] == {"writes": []}


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb"])
def test_metadata_with_lone_surrogates_works_or_fails_typed(saver: Any, text: str) -> None:
    """Redis encoded metadata holding a lone surrogate strictly: UnicodeEncodeError."""
    plant_victim(saver)
    before = snapshot(saver)
    for metadata in ({"key": text}, {text: 1}, {"nested": [text]}):
        try:
            stored = saver.put(config("t"), checkpoint({}, {}), metadata, {})
        except CheckpointKitError:
            continue
        tup = saver.get_tuple(stored)
        for key, value in metadata.items():
            assert tup.metadata[key] == value
    assert snapshot(saver) == before


@pytest.mark.parametrize("key", ["'", "k"])
def test_filters_match_by_equality_not_containment(saver: Any, key: str) -> None:
    """The WIP fuzz saw ``{"'": []}`` match a checkpoint whose "'" held a list.

    A filter value equals the stored value or does not match: an empty list
    or dict is not contained in every list or dict, and a list's items are
    not a subset of it.
    """
    plant_victim(saver)
    stored = saver.put(config("t"), checkpoint({}, {}), {key: [1, 2], "d": {"a": 1, "b": [1]}}, {})
    target = stored["configurable"]["checkpoint_id"]
    for wanted, matches in (
        ({key: [1, 2]}, True),
        ({"d": {"a": 1, "b": [1]}}, True),
        ({key: []}, False),
        ({key: [1]}, False),
        ({key: [2, 1]}, False),
        ({key: 1}, False),
        ({"d": {}}, False),
        ({"d": {"a": 1}}, False),
        ({"d": {"b": []}}, False),
    ):
        found = [t.config["configurable"]["checkpoint_id"] for t in saver.list(None, filter=wanted)]
        assert found == ([target] if matches else []), wanted
        threads = [t.thread_id for t in saver.list_threads(filter=wanted)]
        assert threads == (["t"] if matches else []), wanted


VALUES = [None, [], [None], {}, "", 0, False, [1, 2], [1, 2, 3], None, [], [1]]


def test_falsy_and_none_values_read_back_as_stored(
    backend: str, request: pytest.FixtureRequest, tally: Counter[str]
) -> None:
    """The WIP fuzz saw a channel's ``None`` read back as ``[]``.

    A channel going through None, empty and falsy values and lists (stored
    as deltas where they can be) reads back equal, from the saver that wrote
    it and from a fresh one (no cache).
    """
    spec = spec_for(backend, request)
    with saver_from_spec(spec) as saver:
        versions: dict[str, Any] = {}
        parent = None
        stored = []
        for value in VALUES:
            versions["v"] = saver.get_next_version(versions.get("v"), None)
            cp = checkpoint({"v": value}, dict(versions))
            done = saver.put(config("t", checkpoint_id=parent), cp, {}, {"v": versions["v"]})
            parent = done["configurable"]["checkpoint_id"]
            stored.append((done, value))
        for done, value in stored:
            assert saver.get_tuple(done).checkpoint["channel_values"] == {"v": value}
        listed = [t.checkpoint["channel_values"]["v"] for t in saver.list(config("t"))]
        assert listed == VALUES[::-1]
        if backend != "memory":
            with saver_from_spec(spec) as fresh:
                for done, value in stored:
                    assert fresh.get_tuple(done).checkpoint["channel_values"] == {"v": value}
    tally["acknowledged writes checked"] += 2 * len(VALUES)


def test_memory_keeps_nothing_of_a_refused_put() -> None:
    """A put refused for a bad channel name leaves no partial rows behind."""
    saver = MemoryCheckpointer()
    with pytest.raises(ConfigurationError):
        saver.put(config("t"), checkpoint({"ok": 1, 3: 2}, {"ok": "1", 3: "1"}), {}, {"ok": "1"})
    assert saver._threads == {}
