"""What the Redis checkpointer stores: size of a long chat, round trips, custom serializers."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage

from checkpointkit import MemoryCheckpointer
from checkpointkit.checkpointers.redis import RedisCheckpointer
from checkpointkit.errors import DecryptionError
from checkpointkit.serde import CompressedSerializer, EncryptedSerializer, MsgpackSerializer
from tests.redis.conftest import chat_graph, human, keys_under

MiB = 2**20
KEYS = {"k1": bytes(range(32))}


@pytest.mark.slow
def test_two_hundred_turn_chat_fits_in_three_mib(
    saver: RedisCheckpointer, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = chat_graph(saver)
    memory = MemoryCheckpointer()
    reference = chat_graph(memory)
    cfg = {"configurable": {"thread_id": "chat-200"}}
    for turn in range(200):
        graph.invoke({"messages": [human(turn)]}, cfg)
        reference.invoke({"messages": [human(turn)]}, cfg)
    messages = graph.get_state(cfg).values["messages"]
    assert len(messages) == 400
    assert [m.content for m in messages] == [
        m.content for m in reference.get_state(cfg).values["messages"]
    ]
    used = saver.memory_usage("chat-200")
    stored = saver.storage_bytes("chat-200")
    with capsys.disabled():
        print(
            f"\n200-turn chat: Redis MEMORY USAGE {used / MiB:.2f} MiB, "
            f"stored payload {stored / MiB:.2f} MiB "
            f"(memory checkpointer: {memory.storage_bytes('chat-200') / MiB:.2f} MiB)"
        )
    assert used < 3 * MiB
    # Same rows as the memory checkpointer, give or take the random parts of versions.
    assert abs(stored - memory.storage_bytes("chat-200")) < 0.05 * stored
    assert len(list(graph.get_state_history(cfg))) == 600


def test_storage_bytes_counts_like_the_memory_checkpointer(saver: RedisCheckpointer) -> None:
    memory = MemoryCheckpointer()
    for target in (saver, memory):
        for thread in ("a", "b"):
            put_chat(target, thread, turns=4)
    for thread in ("a", "b", "missing"):
        assert saver.storage_bytes(thread) == memory.storage_bytes(thread)
    assert saver.storage_bytes() == memory.storage_bytes()
    assert saver.memory_usage("a") > saver.storage_bytes("a") > 0
    assert saver.memory_usage("missing") == 0


def put_chat(target: Any, thread: str, turns: int) -> None:
    """Put a chat's checkpoints with fixed ids, versions and messages."""
    messages: list[Any] = []
    parent: str | None = None
    for turn in range(turns):
        messages = [*messages, HumanMessage(content=f"q{turn}", id=f"h{turn}")]
        messages = [*messages, AIMessage(content=f"a{turn}" * 20, id=f"a{turn}")]
        version = f"{turn + 1:032}.{0.5:016}"
        checkpoint = {
            "v": 4, "id": f"1ef{thread}{turn:05d}", "ts": f"2026-01-01T00:00:{turn:02d}",
            "channel_values": {"messages": messages, "n": turn},
            "channel_versions": {"messages": version, "n": version},
            "versions_seen": {}, "updated_channels": ["messages", "n"],
        }  # fmt: skip
        conf = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": parent}}
        stored = target.put(conf, checkpoint, {"step": turn}, {"messages": version, "n": version})
        target.put_writes(stored, [("messages", messages[-1:])], f"task{turn}")
        parent = stored["configurable"]["checkpoint_id"]


def _calls(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in _TOP_LEVEL}


# Commands the saver sends itself; commands run inside scripts count under their own names.
_TOP_LEVEL = ("evalsha", "eval", "zincrby", "zrange", "del", "zrem")


def _round_trips(client: Any, before: dict[str, int]) -> int:
    after = _calls(client)
    return sum(after[name] - before[name] for name in _TOP_LEVEL)


def test_round_trips_per_operation(redis_factory: Any) -> None:
    server = redis_factory()
    client = redis.Redis.from_url(server.uri)
    try:
        with RedisCheckpointer.from_conn_string(server.uri, prefix="rt:") as saver:
            graph = chat_graph(saver)
            cfg = {"configurable": {"thread_id": "rt"}}
            graph.invoke({"messages": [human(0)]}, cfg)  # scripts loaded, thread indexed
            head = saver.get_tuple(cfg)
            assert head is not None
            list(saver.list(cfg, limit=1))  # the server has every script now
            saver.get_delta_channel_history(config=head.config, channels=["messages"])
            before = _calls(client)
            saver.get_tuple(cfg)
            assert _round_trips(client, before) == 1
            before = _calls(client)
            checkpoint = {**head.checkpoint, "id": head.checkpoint["id"][:-1] + "f"}
            saver.put(head.config, checkpoint, {"step": 9}, {})
            assert _round_trips(client, before) == 1
            before = _calls(client)
            saver.put_writes(head.config, [("messages", [AIMessage(content="x")])], "task")
            assert _round_trips(client, before) == 1
            before = _calls(client)
            assert len(list(saver.list(cfg, limit=3))) == 3
            assert _round_trips(client, before) == 1
            before = _calls(client)
            saver.get_delta_channel_history(config=head.config, channels=["messages"])
            assert _round_trips(client, before) == 1
            before = _calls(client)
            graph.invoke({"messages": [human(1)]}, cfg)
            # A turn: read the head, then per step a put and the task's writes.
            assert _round_trips(client, before) == 6
    finally:
        client.close()


@pytest.mark.parametrize("compressed", [False, True])
def test_encrypted_serializer_binds_values_to_their_place(
    redis_url: str, redis_prefix: str, raw: Any, compressed: bool
) -> None:
    inner: Any = MsgpackSerializer()
    if compressed:
        inner = CompressedSerializer(inner, threshold=0)
    serde = EncryptedSerializer(inner, keys=KEYS)
    secret = "the secret word is swordfish"
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, serde=serde) as saver:
        graph = chat_graph(saver, reply_chars=40)
        cfg = {"configurable": {"thread_id": "enc"}}
        graph.invoke({"messages": [HumanMessage(content=secret)]}, cfg)
        graph.invoke({"messages": [HumanMessage(content=secret + " again")]}, cfg)
        assert graph.get_state(cfg).values["messages"][0].content == secret
        stored = b"".join(
            value
            for key in keys_under(raw, redis_prefix)
            if raw.type(key) == b"hash"
            for value in raw.hvals(key)
        )
        assert b"swordfish" not in stored
        # A fork re-encrypts for its new place; the copy reads back.
        saver.fork_thread(cfg, "enc-fork")
        fork = {"configurable": {"thread_id": "enc-fork"}}
        assert [m.content for m in graph.get_state(fork).values["messages"]][::2] == [
            secret,
            secret + " again",
        ]
        saver.copy_thread("enc", "enc-copy")
        assert len(list(saver.list({"configurable": {"thread_id": "enc-copy"}}))) == len(
            list(saver.list(cfg))
        )
    # Another key cannot read the thread.
    other = EncryptedSerializer(MsgpackSerializer(), keys={"k1": bytes(range(1, 33))})
    with (
        RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, serde=other) as saver,
        pytest.raises(DecryptionError),
    ):
        saver.get_tuple({"configurable": {"thread_id": "enc"}})


def test_custom_serde_is_used(saver: RedisCheckpointer, redis_url: str, redis_prefix: str) -> None:
    class Upper:
        """A toy serializer: JSON-ish text, tagged."""

        def __init__(self) -> None:
            self.calls = 0

        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            self.calls += 1
            return "repr", repr(obj).encode()

        def loads_typed(self, data: tuple[str, bytes]) -> Any:
            import ast

            return ast.literal_eval(data[1].decode())

    serde = Upper()
    with RedisCheckpointer.from_conn_string(redis_url, prefix=redis_prefix, serde=serde) as custom:
        cfg = {"configurable": {"thread_id": "custom", "checkpoint_ns": ""}}
        from tests.contract.helpers import checkpoint

        stored = custom.put(
            cfg, checkpoint({"n": [1, 2], "s": "x"}, {"n": "1", "s": "1"}), {}, {"n": "1", "s": "1"}
        )
        custom.put_writes(stored, [("n", 3)], "task")
        tup = custom.get_tuple(stored)
        assert tup is not None
        assert tup.checkpoint["channel_values"] == {"n": [1, 2], "s": "x"}
        assert tup.pending_writes == [("task", "n", 3)]
        assert serde.calls >= 3


def test_lone_surrogates_in_metadata_and_run_ids_round_trip(saver: RedisCheckpointer) -> None:
    """Rows are packed with surrogatepass, and delete_for_runs matches those bytes."""
    from tests.contract.helpers import checkpoint, config

    run = "run-\ud800"
    stored = saver.put(config("s"), checkpoint({}, {}), {"run_id": run, "\udfff": ["\ud800"]}, {})
    kept = saver.put(config("s"), checkpoint({}, {}), {"run_id": "other"}, {})
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.metadata["run_id"] == run
    assert tup.metadata["\udfff"] == ["\ud800"]
    saver.delete_for_runs([run])
    assert saver.get_tuple(stored) is None
    assert saver.get_tuple(kept) is not None
