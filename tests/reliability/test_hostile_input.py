"""Crafted stored blobs: data planted in every store cannot run code, and fails typed.

Each test overwrites a stored channel value in place (SQL ``UPDATE`` on SQLite
and PostgreSQL, ``HSET`` on Redis, the dicts of the memory checkpointer) with
a non-allowlisted type, a pickle, truncated data, a decompression bomb or
tampered ciphertext: reading it raises a typed error, imports and calls
nothing, and the victim thread still reads unchanged. The fuzz tests of
hostile *calls* are in `test_fuzz`.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
import sqlite3
import sys
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from checkpointkit.errors import (
    CheckpointKitError,
    CorruptDataError,
    DecryptionError,
    SerializationError,
)
from checkpointkit.serde import CompressedSerializer, EncryptedSerializer, MsgpackSerializer
from checkpointkit.serde import _wire as w
from tests.contract.helpers import checkpoint, config
from tests.reliability._backends import BACKENDS, saver_from_spec, spec_for
from tests.reliability._hostile import plant_victim, snapshot

SENTINEL = "ck_reliability_sentinel"


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record calls of a sentinel module's callables and every `importlib.import_module`."""
    calls: list[Any] = []
    module = types.ModuleType(SENTINEL)

    def boom(*args: Any, **kwargs: Any) -> None:
        calls.append(("boom", args))

    class Boom:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(("Boom", args))

        def __reduce__(self) -> Any:
            return (boom, ("from pickle",))

    boom.__module__ = Boom.__module__ = SENTINEL
    boom.__qualname__ = "boom"
    module.boom = boom  # type: ignore[attr-defined]
    module.Boom = Boom  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, SENTINEL, module)
    real_import = importlib.import_module

    def recording_import(name: str, package: str | None = None) -> Any:
        calls.append(("import", name))
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", recording_import)
    return calls


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _ext(code: int, payload: Any) -> msgpack.ExtType:
    return msgpack.ExtType(code, _pack(payload))


def _bomb() -> bytes:
    import zstandard

    # 64 MiB of zeros that compress to a few KiB, without a declared size.
    zeros = b"\x00" * (64 * 1024 * 1024)
    return zstandard.ZstdCompressor(write_content_size=False).compress(zeros)


def _pickled_boom() -> bytes:
    cls = sys.modules[SENTINEL].Boom
    return pickle.dumps(cls.__new__(cls))  # unpickling it would call boom()


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x40]) + data[middle + 1 :]


KEY = hashlib.sha256(b"checkpointkit reliability test key").digest()

# name -> (serializer factory, (original tag, original bytes) -> crafted (tag, bytes))
CRAFTS: dict[str, tuple[Callable[[], Any], Callable[[str, bytes], tuple[str, bytes]]]] = {
    "object-not-allowlisted": (
        MsgpackSerializer,
        lambda t, b: ("ckmsgpack", _pack(_ext(w.EXT_OBJECT, [f"{SENTINEL}:Boom", "pwned"]))),
    ),
    "os-system": (
        MsgpackSerializer,
        lambda t, b: ("ckmsgpack", _pack(_ext(w.EXT_OBJECT, ["os:system", "echo pwned"]))),
    ),
    "langgraph-constructor": (
        MsgpackSerializer,
        lambda t, b: (
            "msgpack",
            _pack(_ext(w.LG_EXT_CONSTRUCTOR_POS_ARGS, [SENTINEL, "boom", ["pwned"]])),
        ),
    ),
    "pickle": (MsgpackSerializer, lambda t, b: ("pickle", _pickled_boom())),
    "truncated": (MsgpackSerializer, lambda t, b: (t, b[: len(b) // 2])),
    "decompression-bomb": (
        lambda: CompressedSerializer(MsgpackSerializer(), max_decompressed_size=1024 * 1024),
        lambda t, b: ("ckmsgpack+zstd", _bomb()),
    ),
    "tampered-ciphertext": (
        lambda: EncryptedSerializer(MsgpackSerializer(), keys={"k1": KEY}),
        lambda t, b: (t, _flip(b)),
    ),
}
EXPECTED: dict[str, type[Exception]] = {
    "truncated": CorruptDataError,
    "decompression-bomb": CorruptDataError,
    "tampered-ciphertext": DecryptionError,
}


def tamper(backend: str, saver: Any, spec: dict[str, Any], craft: Any) -> None:
    """Replace the stored value of channel ``payload`` of thread ``target`` in place."""
    if backend == "memory":
        blobs = saver._threads["target"].blobs[""]
        blob = next(b for b in blobs.values() if b.channel == "payload")
        blob.type, blob.payload = craft(blob.type, blob.payload)
        saver._core.forget()
    elif backend == "sqlite":
        conn = sqlite3.connect(spec["path"])
        with conn:
            old = conn.execute(
                "SELECT type, payload FROM ck_blobs "
                "WHERE thread_id = 'target' AND channel = 'payload'"
            ).fetchone()
            conn.execute(
                "UPDATE ck_blobs SET type = ?, payload = ? "
                "WHERE thread_id = 'target' AND channel = 'payload'",
                craft(*old),
            )
        conn.close()
    elif backend == "postgres":
        import psycopg

        with psycopg.connect(spec["uri"], autocommit=True) as conn:
            old = conn.execute(
                "SELECT type, payload FROM ck_blobs "
                "WHERE thread_id = 'target' AND channel = 'payload'"
            ).fetchone()
            assert old is not None
            conn.execute(
                "UPDATE ck_blobs SET type = %s, payload = %s "
                "WHERE thread_id = 'target' AND channel = 'payload'",
                craft(old[0], bytes(old[1])),
            )
    else:
        import dataclasses

        import redis

        from checkpointkit.checkpointers.redis import _codec

        client = redis.Redis.from_url(spec["url"])
        key = f"{spec['prefix']}{{target}}:b"
        [(field, value)] = [
            (f, v) for f, v in client.hgetall(key).items() if b"\x00payload\x00" in f
        ]
        blob = _codec.decode_blob("target", field, value)
        new_type, new_payload = craft(blob.type, blob.payload)
        client.hset(
            key,
            field,
            _codec.encode_blob(dataclasses.replace(blob, type=new_type, payload=new_payload)),
        )
        client.close()


@pytest.mark.parametrize("crafted", sorted(CRAFTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_crafted_stored_blobs_raise_typed_errors_and_run_nothing(
    backend: str,
    crafted: str,
    request: pytest.FixtureRequest,
    watch: list[Any],
    tally: Counter[str],
) -> None:
    serde_factory, craft = CRAFTS[crafted]
    spec = spec_for(backend, request)
    with saver_from_spec(spec, serde=serde_factory()) as writer:
        plant_victim(writer)
        versions = {"payload": writer.get_next_version(None, None)}
        cp = checkpoint({"payload": {"text": "x" * 4096, "n": list(range(50))}}, versions)
        stored = writer.put(config("target"), cp, {"step": 0}, versions)
        before = snapshot(writer)
        tamper(backend, writer, spec, craft)
        if backend == "memory":
            read_crafted(writer, stored, crafted, watch, before)
        else:  # a fresh saver, as another process would read (no cache of this one's)
            with saver_from_spec(spec, serde=serde_factory()) as reader:
                read_crafted(reader, stored, crafted, watch, before)
    tally["inputs tried"] += 1


def read_crafted(
    saver: Any, stored: Any, crafted: str, watch: list[Any], before: list[Any]
) -> None:
    modules = set(sys.modules)
    watch.clear()  # what opening the saver imported does not count
    for read in (
        lambda: saver.get_tuple(stored),
        lambda: saver.get_tuple(config("target")),
        lambda: list(saver.list(config("target"))),
    ):
        with pytest.raises(EXPECTED.get(crafted, SerializationError)) as caught:
            read()
        assert isinstance(caught.value, CheckpointKitError)
    assert watch == [], "reading a crafted blob called or imported something"
    assert set(sys.modules) - modules == set(), "reading a crafted blob imported a module"
    assert snapshot(saver) == before  # the other thread still reads, unchanged
