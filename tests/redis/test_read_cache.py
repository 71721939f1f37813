"""The rows a saver keeps decoded (`DecodedReplies`): equal to decoding, never stale."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import redis
from langgraph.checkpoint.base import Checkpoint

from checkpointkit.checkpointers.redis import RedisCheckpointer
from checkpointkit.checkpointers.redis._codec import decode_blob, decode_row, decode_writes
from checkpointkit.checkpointers.redis._keys import row_field

CHECKPOINT_ID = "1ef4f797-8335-6428-8001-8a1503f9b875"


def checkpoint(values: dict[str, Any], versions: dict[str, str]) -> Checkpoint:
    return Checkpoint(
        v=4, id=CHECKPOINT_ID, ts=datetime.now(timezone.utc).isoformat(),
        channel_values=values, channel_versions=versions,
        versions_seen={"node": dict(versions)}, updated_channels=list(values),
    )  # fmt: skip


def put_step(saver: RedisCheckpointer, thread: str, values: dict[str, Any]) -> dict[str, Any]:
    versions = {channel: "00000001.0" for channel in values}
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint(values, versions), {"run_id": "r\udc80"}, versions)
    return dict(stored)


def test_learned_rows_and_writes_equal_the_decoded_stored_bytes(
    saver: RedisCheckpointer, raw: redis.Redis
) -> None:
    stored = put_step(saver, "learn", {"a": {"n": 1}, "b": ["x", "y"]})
    # Two special writes with the same idx: the last wins.
    saver.put_writes(
        stored, [("a", 1), ("a", 2), ("__error__", "e1"), ("__error__", "e2")], "task", "path"
    )
    rows_key, _, blobs_key, writes_key = saver._layout.thread_keys("learn")
    field = row_field("", CHECKPOINT_ID).encode()
    row_bytes = raw.hget(rows_key, field)
    write_bytes = raw.hget(writes_key, field)
    assert isinstance(row_bytes, bytes)
    assert isinstance(write_bytes, bytes)
    replies = saver._replies
    learned_row = replies._rows.entries[("learn", field, row_bytes)]
    assert learned_row == decode_row("learn", field, row_bytes)
    learned_writes = replies._writes.entries[("learn", field, write_bytes)]
    assert list(learned_writes) == decode_writes("learn", field, write_bytes)
    stored_blobs = raw.hgetall(blobs_key)
    assert len(stored_blobs) == 2
    for blob_field, blob_bytes in stored_blobs.items():
        learned_blob = replies._blobs.entries[("learn", blob_field, blob_bytes)]
        assert learned_blob == decode_blob("learn", blob_field, blob_bytes)
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"a": {"n": 1}, "b": ["x", "y"]}
    assert tup.metadata["run_id"] == "r\udc80"
    assert sorted(tup.pending_writes or []) == [
        ("task", "__error__", "e2"), ("task", "a", 1), ("task", "a", 2),
    ]  # fmt: skip


def test_merged_writes_are_read_whole(saver: RedisCheckpointer) -> None:
    stored = put_step(saver, "merge", {"a": 1})
    saver.put_writes(stored, [("a", 1)], "t1")
    saver.put_writes(stored, [("a", 2)], "t2")
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert sorted(tup.pending_writes or []) == [("t1", "a", 1), ("t2", "a", 2)]


def test_a_thread_recreated_elsewhere_under_the_same_versions_reads_new_values(
    redis_url: str, redis_prefix: str
) -> None:
    with (
        RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as mine,
        RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix) as other,
    ):
        stored = put_step(mine, "reborn", {"a": {"n": 1}, "b": "old"})
        mine.put_writes(stored, [("a", "old write")], "task")
        for _ in range(2):  # the second read is served from what the first kept
            tup = mine.get_tuple(stored)
            assert tup is not None
            assert tup.checkpoint["channel_values"] == {"a": {"n": 1}, "b": "old"}
        # Another process deletes the thread and writes it again: same ids and versions.
        other.delete_thread("reborn")
        again = put_step(other, "reborn", {"a": {"n": 2}, "b": "new"})
        other.put_writes(again, [("a", "new write")], "task")
        assert again == stored
        tup = mine.get_tuple(stored)
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"a": {"n": 2}, "b": "new"}
        assert tup.pending_writes == [("task", "a", "new write")]
