"""Fuzz (hypothesis): hostile calls on every backend work or fail typed, and harm no one.

Configs, metadata, metadata filters, thread ids, namespaces, checkpoint ids,
channel names and task ids built from quotes, NULs, lone surrogates, unicode,
SQL, Lua, glob and LIKE fragments (`_hostile`) are thrown at every public
method of each backend, whose store holds a victim thread written first:

* every call returns or raises a `CheckpointKitError`; anything else fails;
* a put that works reads back equal (values, metadata, parent, writes), and a
  filter on its own metadata finds it;
* a filtered listing returns exactly the checkpoints whose metadata equals the
  filter's values (JSON equality: no containment, prefix or case folding);
* the victim thread never changes (deletes, prunes, copies and forks aimed at
  look-alike ids included).

Under ``CI=true`` hypothesis is derandomized: every run tries the same inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import get_serializable_checkpoint_metadata

from checkpointkit.checkpointers.base import check_thread_id, metadata_matches, validate_filter
from checkpointkit.errors import CheckpointKitError, InvalidFilterError
from tests.contract.helpers import checkpoint, config
from tests.harness.plugin import in_ci
from tests.reliability._backends import BACKENDS, saver_from_spec, spec_for
from tests.reliability._hostile import (
    FRAGMENTS,
    VICTIM,
    checkpoint_ids,
    configs,
    filters,
    garbage,
    hashable_garbage,
    hostile_text,
    json_value,
    namespaces,
    plant_victim,
    snapshot,
    thread_ids,
)

# Examples per backend: the module stays well under 2 minutes on a loaded 2-core machine.
EXAMPLES = {"memory": 200, "sqlite": 150, "postgres": 100, "redis": 100}
channels = st.one_of(hostile_text, hashable_garbage)


def fuzz_settings(backend: str) -> settings:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        database=None,
        derandomize=in_ci(),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def victim_saver(backend: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Yield a saver of `backend` whose store holds the victim thread."""
    with saver_from_spec(spec_for(backend, request)) as saver:
        plant_victim(saver)
        yield saver


class Caller:
    """Run calls that may fail only with a `CheckpointKitError`; count them."""

    def __init__(self) -> None:
        self.tried = 0

    def __call__(self, call: Callable[[], Any]) -> tuple[bool, Any]:
        self.tried += 1
        try:
            return True, call()
        except CheckpointKitError as exc:
            return False, exc


def is_victim(thread_id: Any) -> bool:
    try:
        return str(thread_id) == VICTIM
    except Exception:  # an object whose str() fails is no victim
        return False


def ids(tuples: Any) -> list[str]:
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


def check_filtered(
    saver: Any, call: Caller, filter_: Any, victim: list[Any], results: dict[str, Any]
) -> None:
    """Check what filtered reads returned against the filter, and the victim's matches."""
    try:
        wanted = validate_filter(filter_)
    except InvalidFilterError:
        wanted = None
    if wanted is None:
        for name, (ok, _) in results.items():
            assert not ok, f"{name} accepted the invalid filter {filter_!r}"
        return
    for name, (ok, result) in results.items():
        if not ok:  # a bad config may be refused, the filter may not
            assert "target" in name, f"{name} refused the valid filter {filter_!r}: {result!r}"
            assert not isinstance(result, InvalidFilterError), result
            continue
        for item in result:
            assert metadata_matches(item.metadata, wanted), (
                f"{name} with filter {filter_!r} returned metadata {item.metadata!r}"
            )
    # Completeness: the victim's checkpoints that match are all found.
    expected = [cp for cp, _, meta, _, _ in victim if metadata_matches(meta, wanted)]
    ok, found = call(lambda: list(saver.list(config(VICTIM), filter=filter_)))
    assert ok, found
    assert [t.config for t in found] == expected, f"filter {filter_!r} missed the victim"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fuzzed_puts_writes_and_reads(victim_saver: Any, backend: str, tally: Counter[str]) -> None:
    saver = victim_saver
    before = snapshot(saver)
    assert len(before) == 2
    call = Caller()

    @fuzz_settings(backend)
    @given(
        thread_id=thread_ids,
        ns=namespaces,
        parent_id=checkpoint_ids,
        own_id=st.one_of(st.none(), hostile_text),
        channel=channels,
        value=json_value,
        metadata=st.dictionaries(hostile_text, json_value, max_size=3),
        write_channel=channels,
        task_id=st.one_of(hostile_text, garbage),
        task_path=st.one_of(st.just(""), hostile_text),
        filter_=filters,
        cfg=configs,
        limit=st.one_of(st.none(), st.integers(-1, 5), garbage),
    )
    def fuzz(
        thread_id: Any, ns: Any, parent_id: Any, own_id: Any, channel: Any, value: Any,
        metadata: Any, write_channel: Any, task_id: Any, task_path: Any, filter_: Any,
        cfg: Any, limit: Any,
    ) -> None:  # fmt: skip
        target = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        if parent_id is not None:
            target["configurable"]["checkpoint_id"] = parent_id
        writable = not is_victim(thread_id)
        try:
            put_and_read(thread_id, ns, target, writable, channel, value, own_id, metadata,
                         write_channel, task_id, task_path, filter_, cfg, limit)  # fmt: skip
        finally:  # also after a failure, so hypothesis shrinks from a clean store
            if writable:
                call(lambda: saver.delete_thread(thread_id))
        assert snapshot(saver) == before, "the victim thread changed"

    def put_and_read(
        thread_id: Any, ns: Any, target: Any, writable: bool, channel: Any, value: Any,
        own_id: Any, metadata: Any, write_channel: Any, task_id: Any, task_path: Any,
        filter_: Any, cfg: Any, limit: Any,
    ) -> None:  # fmt: skip
        if writable:
            versions = {channel: saver.get_next_version(None, None)}
            cp = checkpoint({channel: value}, versions)
            if own_id is not None:
                cp["id"] = own_id
            ok, stored = call(lambda: saver.put(target, cp, dict(metadata), versions))
            if ok:
                check_stored(saver, call, target, cp, metadata, stored)
                ok, _ = call(
                    lambda: saver.put_writes(stored, [(write_channel, value)], task_id, task_path)
                )
                if ok:
                    tup = saver.get_tuple(stored)
                    assert tup.pending_writes == [(task_id, write_channel, value)]
        for name, read in {
            "get_tuple(cfg)": lambda: saver.get_tuple(cfg),
            "get_tuple(target)": lambda: saver.get_tuple(target),
            "list(cfg)": lambda: list(saver.list(cfg, limit=5)),
            "list(target, before)": lambda: list(saver.list(target, before=cfg, limit=3)),
            "list(None, limit)": lambda: list(saver.list(None, limit=limit)),
        }.items():
            ok, result = call(read)
            if ok and name.startswith("list(target"):
                assert all(t.config["configurable"]["thread_id"] == str(thread_id) for t in result)
        results = {
            "list(target, filter)": call(lambda: list(saver.list(target, filter=filter_))),
            "list(None, filter)": call(lambda: list(saver.list(None, filter=filter_, limit=5))),
            "list_threads(filter)": call(lambda: saver.list_threads(filter=filter_, limit=5)),
        }
        check_filtered(saver, call, filter_, before, results)

    fuzz()
    tally["inputs tried"] += call.tried


def check_stored(
    saver: Any, call: Caller, target: Any, cp: Any, metadata: Any, stored: Any
) -> None:
    """Check a put that worked: it reads back equal and its own metadata finds it."""
    tup = saver.get_tuple(stored)
    assert tup is not None, "a put that worked stored nothing"
    conf = target["configurable"]
    assert tup.config["configurable"]["thread_id"] == str(conf["thread_id"])
    assert tup.checkpoint["id"] == cp["id"]
    assert tup.checkpoint["channel_values"] == cp["channel_values"]
    parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
    assert parent == (conf.get("checkpoint_id") or None)
    # LangGraph's own rule: NULs are stripped from top-level string values.
    for key, item in get_serializable_checkpoint_metadata(target, metadata).items():
        assert tup.metadata[key] == item, f"metadata {key!r} read back as {tup.metadata[key]!r}"
    own = {key: tup.metadata[key] for key in metadata}
    ok, found = call(lambda: list(saver.list(stored, filter=own)))
    if ok:
        assert ids(found) == [cp["id"]], f"a filter on its own metadata {own!r} missed it"
    else:  # only a key no filter can name (empty, NUL) is refused
        assert any(not key or "\x00" in key for key in own), found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fuzzed_thread_operations(victim_saver: Any, backend: str, tally: Counter[str]) -> None:
    saver = victim_saver
    before = snapshot(saver)
    victim_id = before[0][0]["configurable"]["checkpoint_id"]
    call = Caller()

    @fuzz_settings(backend)
    @given(
        thread_id=thread_ids,
        other_id=thread_ids,
        cfg=configs,
        history_channels=st.lists(channels, max_size=3),
        run_ids=st.lists(st.one_of(hostile_text, hashable_garbage), max_size=3),
        strategy=st.one_of(st.sampled_from(["keep_latest", "delete"]), hostile_text, garbage),
    )
    def fuzz(
        thread_id: Any, other_id: Any, cfg: Any, history_channels: Any, run_ids: Any,
        strategy: Any,
    ) -> None:  # fmt: skip
        harmless = not is_victim(thread_id) and not is_victim(other_id)
        # Unusable fork targets ("", None, a list) are test_regressions' business.
        if not call(lambda: check_thread_id(other_id))[0]:
            other_id = "fork"
        call(lambda: saver.get_delta_channel_history(config=cfg, channels=history_channels))
        call(lambda: saver.delete_for_runs(run_ids))
        ok, forked = call(lambda: saver.fork_thread(config(VICTIM, "", victim_id), other_id))
        if ok:
            assert not is_victim(other_id), "a fork replaced the victim"
            assert saver.get_tuple(forked).checkpoint == before[0][1]
        call(lambda: saver.fork_thread(cfg, other_id) if not is_victim(other_id) else None)
        if harmless:
            call(lambda: saver.copy_thread(thread_id, other_id))
            call(lambda: saver.prune([thread_id, other_id], strategy=strategy))
            call(lambda: saver.delete_thread(thread_id))
            call(lambda: saver.delete_thread(other_id))
        assert snapshot(saver) == before, "the victim thread changed"

    fuzz()
    tally["inputs tried"] += call.tried


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_fragment_in_every_place(
    backend: str, request: pytest.FixtureRequest, tally: Counter[str]
) -> None:
    """Each hostile fragment as a thread id, namespace, checkpoint id, channel, task, metadata."""
    call = Caller()
    with saver_from_spec(spec_for(backend, request)) as saver:
        plant_victim(saver)
        before = snapshot(saver)
        for fragment in FRAGMENTS:
            places: dict[str, tuple[str, str, str | None, str, dict[str, Any]]] = {
                "thread id": (fragment, "", None, "c", {"value": 1}),
                "namespace": ("frag", fragment, None, "c", {"value": 2}),
                "checkpoint id": ("frag", "", fragment, "c", {"value": 3}),
                "channel": ("frag", "", None, fragment, {"value": 4}),
                "metadata": ("frag", "", None, "c", {"value": fragment, fragment: fragment}),
            }
            for place, (thread_id, ns, own_id, channel, metadata) in places.items():
                if is_victim(thread_id):
                    continue
                target = config(thread_id, ns)
                versions = {channel: saver.get_next_version(None, None)}
                cp = checkpoint({channel: [fragment, {fragment: fragment}]}, versions)
                if own_id is not None:
                    cp["id"] = own_id
                ok, stored = call(lambda: saver.put(target, cp, metadata, versions))  # noqa: B023
                if not ok:
                    continue
                check_stored(saver, call, target, cp, metadata, stored)
                wanted = {"value": saver.get_tuple(stored).metadata["value"]}
                found = list(saver.list(None, filter=wanted))
                assert ids(found) == [cp["id"]], f"{place} {fragment!r}: filter {wanted!r}"
                threads = saver.list_threads(filter=wanted)
                if not ns:
                    assert [t.thread_id for t in threads] == [thread_id], (place, fragment)
                ok, _ = call(
                    lambda: saver.put_writes(stored, [(fragment, fragment)], fragment, fragment)  # noqa: B023
                )
                if ok:
                    tup = saver.get_tuple(stored)
                    assert tup.pending_writes == [(fragment, fragment, fragment)], (place, fragment)
                ok, _ = call(lambda: saver.delete_thread(thread_id))  # noqa: B023
                assert ok, f"{place} {fragment!r}: delete_thread failed"
                assert saver.get_tuple(stored) is None, f"{place} {fragment!r}: not deleted"
            assert snapshot(saver) == before, f"fragment {fragment!r} changed the victim"
    tally["inputs tried"] += call.tried
