"""EncryptedSerializer: AES-256-GCM bound to the place, key rotation, fails closed."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import pytest

from checkpointkit.errors import ConfigurationError, DecryptionError, MissingDependencyError
from checkpointkit.serde import (
    CompressedSerializer,
    EncryptedSerializer,
    MsgpackSerializer,
    dumps_in,
    loads_in,
    place,
)
from checkpointkit.serde.encryption import KEYS_ENV_VAR, generate_key, parse_keys
from tests.serde.conftest import TEST_KEYS
from tests.serde.serde_cases import conversation

HERE = place("thread-1", "", "checkpoint-1", "messages")
VALUE = {"messages": conversation(8), "n": 1}


def test_tags_and_round_trip() -> None:
    serde = EncryptedSerializer(keys=TEST_KEYS)
    tag, data = dumps_in(serde, VALUE, HERE)
    assert tag == "ckmsgpack+aesgcm"
    assert b"question" not in data
    assert loads_in(serde, (tag, data), HERE) == VALUE
    both = EncryptedSerializer(CompressedSerializer(threshold=0), keys=TEST_KEYS)
    tag, data = dumps_in(both, VALUE, HERE)
    assert tag == "ckmsgpack+zstd+aesgcm"
    assert loads_in(both, (tag, data), HERE) == VALUE


def test_plain_methods_use_an_empty_context() -> None:
    serde = EncryptedSerializer(keys=TEST_KEYS)
    blob = serde.dumps_typed(VALUE)
    assert serde.loads_typed(blob) == VALUE
    assert loads_in(serde, blob, b"") == VALUE
    with pytest.raises(DecryptionError):
        loads_in(serde, blob, HERE)


def test_same_value_encrypts_differently_each_time() -> None:
    serde = EncryptedSerializer(keys=TEST_KEYS)
    assert serde.dumps_typed("x") != serde.dumps_typed("x")


def test_plaintext_is_refused_unless_migrating() -> None:
    plain = MsgpackSerializer().dumps_typed(VALUE)
    with pytest.raises(DecryptionError, match="allow_plaintext=True"):
        EncryptedSerializer(keys=TEST_KEYS).loads_typed(plain)
    with pytest.raises(DecryptionError):
        EncryptedSerializer(keys=TEST_KEYS).loads_typed(("msgpack", b"\x80"))
    migrating = EncryptedSerializer(keys=TEST_KEYS, allow_plaintext=True)
    assert migrating.loads_typed(plain) == VALUE
    assert migrating.dumps_typed(VALUE)[0] == "ckmsgpack+aesgcm"  # still writes encrypted


def test_every_flipped_byte_is_detected() -> None:
    serde = EncryptedSerializer(keys=TEST_KEYS)
    tag, data = dumps_in(serde, {"k": "v"}, HERE)
    for index in range(len(data)):
        for flip in (0x01, 0x80):
            tampered = bytearray(data)
            tampered[index] ^= flip
            with pytest.raises(DecryptionError):
                loads_in(serde, (tag, bytes(tampered)), HERE)
    for end in range(len(data)):
        with pytest.raises(DecryptionError):
            loads_in(serde, (tag, data[:end]), HERE)


@pytest.mark.parametrize(
    "elsewhere",
    [
        place("thread-2", "", "checkpoint-1", "messages"),  # another thread
        place("thread-1", "", "checkpoint-2", "messages"),  # another checkpoint
        place("thread-1", "", "checkpoint-1", "other"),  # another channel
        place("thread-1", "sub", "checkpoint-1", "messages"),  # another namespace
        b"",
    ],
)
def test_ciphertext_moved_to_another_place_fails(elsewhere: bytes) -> None:
    serde = EncryptedSerializer(keys=TEST_KEYS)
    blob = dumps_in(serde, VALUE, HERE)
    with pytest.raises(DecryptionError, match="another place"):
        loads_in(serde, blob, elsewhere)


def test_retagged_ciphertext_fails() -> None:
    serde = EncryptedSerializer(CompressedSerializer(threshold=0), keys=TEST_KEYS)
    tag, data = dumps_in(serde, VALUE, HERE)
    assert tag == "ckmsgpack+zstd+aesgcm"
    with pytest.raises(DecryptionError):
        loads_in(serde, ("ckmsgpack+aesgcm", data), HERE)


def test_wrong_key_fails() -> None:
    blob = EncryptedSerializer(keys={"k1": bytes(32)}).dumps_typed(VALUE)
    with pytest.raises(DecryptionError):
        EncryptedSerializer(keys={"k1": bytes([1] * 32)}).loads_typed(blob)


def test_key_rotation() -> None:
    old = EncryptedSerializer(keys={"k0": TEST_KEYS["k0"]})
    old_blob = dumps_in(old, VALUE, HERE)
    rotated = EncryptedSerializer(keys=TEST_KEYS, current_key_id="k1")
    assert loads_in(rotated, old_blob, HERE) == VALUE
    new_blob = dumps_in(rotated, VALUE, HERE)
    assert new_blob[1][2:4] == b"k1"
    with pytest.raises(DecryptionError, match=r"'k1'.*add that key"):
        loads_in(old, new_blob, HERE)
    assert EncryptedSerializer(keys=TEST_KEYS).current_key_id == "k1"  # first key


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    k_new, k_old = generate_key(), generate_key()
    monkeypatch.setenv(KEYS_ENV_VAR, f" new:{k_new} , old:{k_old}")
    serde = EncryptedSerializer()
    assert serde.current_key_id == "new"
    assert serde.key_ids == ("new", "old")
    assert serde.loads_typed(serde.dumps_typed(VALUE)) == VALUE
    assert "key" not in repr(serde).replace("key_ids", "").replace("current_key_id", "")
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(k_new)).decode()
    assert parse_keys(f"u:{urlsafe}")["u"] == base64.b64decode(k_new)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ("", "has no keys"),
        ("justakey", "id:base64key"),
        ("a:!!notbase64", "not valid base64"),
        (f"a:{base64.b64encode(bytes(16)).decode()}", "16 bytes long"),
        (f"a:{generate_key()},a:{generate_key()}", "twice"),
        (f"bad id:{generate_key()}", "key id"),
    ],
)
def test_bad_environment_keys(monkeypatch: pytest.MonkeyPatch, env: str, match: str) -> None:
    monkeypatch.setenv(KEYS_ENV_VAR, env)
    with pytest.raises(ConfigurationError, match=match):
        EncryptedSerializer()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keys": {}}, "empty"),
        ({"keys": {"k": bytes(31)}}, "31 bytes long"),
        ({"keys": {"k": bytes(33)}}, "33 bytes long"),
        ({"keys": {"k": 42}}, "bytes or a base64"),
        ({"keys": {"": bytes(32)}}, "key id"),
        ({"keys": {"k:1": bytes(32)}}, "key id"),
        ({"keys": [("k", bytes(32))]}, "mapping"),
        ({"keys": {"k": bytes(32)}, "current_key_id": "other"}, "current_key_id 'other'"),
        ({"keys": {"k": bytes(32)}, "allow_plaintext": "yes"}, "allow_plaintext"),
        ({"keys": {"k": bytes(32)}, "inner": object()}, "dumps_typed"),
    ],
)
def test_constructor_validates_arguments(kwargs: dict[str, Any], match: str) -> None:
    inner = kwargs.pop("inner", None)
    with pytest.raises(ConfigurationError, match=match):
        EncryptedSerializer(inner, **kwargs)


def test_error_messages_never_contain_key_material() -> None:
    secret = bytes(range(100, 131))  # 31 bytes: invalid
    with pytest.raises(ConfigurationError) as info:
        EncryptedSerializer(keys={"k": secret})
    assert base64.b64encode(secret).decode() not in str(info.value)
    assert repr(secret) not in str(info.value)


def test_missing_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(MissingDependencyError, match=r"checkpointkit\[encryption\]"):
        EncryptedSerializer(keys=TEST_KEYS)


def test_serde_package_imports_without_optional_dependencies() -> None:
    code = (
        "import sys\n"
        "sys.modules['zstandard'] = None\n"
        "sys.modules['cryptography'] = None\n"
        "import checkpointkit.serde as s\n"
        "serde = s.default_serializer()\n"
        "assert serde.loads_typed(serde.dumps_typed((1,))) == (1,)\n"
        "try:\n"
        "    s.CompressedSerializer()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "checkpointkit[zstd]" in result.stdout
