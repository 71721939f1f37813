"""Hostile input shared by the fuzz and crafted-blob tests: strategies and a victim thread.

The strategies build text out of fragments that break naive storage code:
quotes, NULs, lone surrogates, SQL, Lua, glob and LIKE fragments, Redis key
syntax, near-misses of the victim thread's id. `plant_victim` writes thread
``victim`` before an attack; `snapshot` is what must not change afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from checkpointkit.errors import CheckpointKitError
from tests.contract.helpers import checkpoint, config

VICTIM = "victim"

FRAGMENTS = [
    "'", '"', "`", "\\", "\x00", "a\x00b", "\ud800", "\udfff", "\n", "%", "_", "*", "?",
    "[a-z]", "{", "}", "{victim}", ":", "$", "$.step", "@>", "::text", "victim", "victim*",
    "vict%", "v_ctim", "VICTIM", "victim\x00", " victim", "' OR '1'='1",
    "'; DROP TABLE ck_checkpoints; --",
    "\"; DELETE FROM ck_blobs; --", "1); SELECT pg_sleep(5); --", "redis.call('FLUSHALL')",
    "]]..redis.call('DEL',KEYS[1])..[[", "\x01\x02", "\x01", "ñ", "日本語", "🙂", "\u202e",
    "ck:", "checkpointkit:*", "{x}:c", "\x7f", "\ufeff", "owner", "step", "source",
]  # fmt: skip
hostile_text = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=4).map("".join),
    st.text(max_size=12),
)
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), hostile_text
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)
    ),
    max_leaves=6,
)
garbage = st.sampled_from([None, b"bytes", 1.5, object(), [], {}, ("t",), True])
hashable_garbage = st.sampled_from([None, b"bytes", 1.5, ("t",), True, 3])
thread_ids = st.one_of(hostile_text, st.integers(-5, 2**64), garbage)
checkpoint_ids = st.one_of(st.none(), hostile_text, garbage)
namespaces = st.one_of(st.just(""), hostile_text, garbage)
filters = st.one_of(
    st.none(),
    st.dictionaries(hostile_text, json_value, max_size=3),
    # the victim's own keys with near-miss values: a wrong match shows at once
    st.dictionaries(st.sampled_from(["owner", "step", "source"]), json_value, max_size=2),
    st.dictionaries(
        st.one_of(hostile_text, hashable_garbage), st.one_of(json_value, garbage), max_size=2
    ),
    garbage,
)
configs = st.one_of(
    st.builds(
        lambda t, ns, c: {
            "configurable": {"thread_id": t, "checkpoint_ns": ns, "checkpoint_id": c}
        },
        thread_ids,
        namespaces,
        checkpoint_ids,
    ),
    st.dictionaries(st.sampled_from(["configurable", "metadata", "x"]), json_value, max_size=2),
    garbage,
)


def attempt(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run `call`; return (True, result), or (False, error) for a `CheckpointKitError` only.

    Any other exception propagates and fails the test: an untyped error.
    """
    try:
        return True, call()
    except CheckpointKitError as exc:
        return False, exc


def snapshot(saver: Any) -> list[Any]:
    """Return everything stored in the victim thread, comparable with ``==``."""
    return [
        (t.config, t.checkpoint, t.metadata, t.parent_config, sorted(t.pending_writes, key=repr))
        for t in saver.list(config(VICTIM))
    ]


def plant_victim(saver: Any) -> None:
    """Store two checkpoints (a growing list, a secret, pending writes) in thread ``victim``."""
    versions: dict[str, Any] = {}
    parent = None
    for step in range(2):
        values = {"messages": [f"m{i}" for i in range(step + 1)], "secret": f"s{step}"}
        for channel in values:
            versions[channel] = saver.get_next_version(versions.get(channel), None)
        cp = checkpoint(values, dict(versions))
        meta = {"step": step, "source": "loop", "owner": VICTIM}
        stored = saver.put(config(VICTIM, checkpoint_id=parent), cp, meta, dict(versions))
        parent = stored["configurable"]["checkpoint_id"]
        saver.put_writes(stored, [("secret", f"w{step}")], f"task-{step}")
