"""AES-256-GCM encryption around any serializer, with key rotation; fails closed.

`EncryptedSerializer` encrypts the inner serializer's output with AES-256-GCM
(the `cryptography` package, extra ``encryption``) and stores it under the
inner tag plus ``+aesgcm``. The payload is::

    version (1 byte, = 1) | key id length (1 byte) | key id (UTF-8)
    | nonce (12 random bytes) | ciphertext + 16-byte GCM tag

The associated data authenticated with it is a length-prefixed encoding of
the format version, the inner tag, the key id and the *context* — the place
the value is stored (thread, namespace, checkpoint, channel...), passed by
checkpointers through `dumps_typed_in` / `loads_typed_in`. A ciphertext copied
to another place, given another tag, or altered in any byte fails to decrypt
with `DecryptionError`. Plain `dumps_typed` / `loads_typed` use an empty
context.

Keys are 32 bytes, each with an id stored next to the ciphertext: values are
encrypted with the current key and decrypted with whichever key they name, so
a key is rotated by adding a new current key and keeping the old ones until
the data is rewritten. Keys come from ``keys=`` or from the environment
variable ``CHECKPOINTKIT_ENCRYPTION_KEYS`` in the form
``id1:base64key,id2:base64key`` (the first is current). With random 96-bit
nonces, rotate a key before it has encrypted about 2**32 values.

Reading fails closed: a stored value whose tag lacks ``+aesgcm`` is refused
with `DecryptionError` unless ``allow_plaintext=True`` is passed, meant for
migrating plaintext data.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any

from checkpointkit.errors import (
    ConfigurationError,
    DecryptionError,
    MissingDependencyError,
    SerializationError,
)
from checkpointkit.serde._wire import SUFFIX_AESGCM
from checkpointkit.serde.base import SerializerProtocol, dumps_in, loads_in
from checkpointkit.serde.compression import check_inner

__all__ = ["KEYS_ENV_VAR", "EncryptedSerializer", "generate_key", "parse_keys"]

#: Environment variable read when no ``keys=`` are given.
KEYS_ENV_VAR = "CHECKPOINTKIT_ENCRYPTION_KEYS"

_VERSION = 1
_KEY_SIZE = 32
_NONCE_SIZE = 12
_TAG_SIZE = 16
_AAD_PREFIX = b"checkpointkit/aesgcm"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def generate_key() -> str:
    """Return a new random 32-byte key, base64-encoded for the environment variable."""
    return base64.b64encode(os.urandom(_KEY_SIZE)).decode("ascii")


def _decode_key(key_id: str, key: Any) -> bytes:
    if isinstance(key, str):
        text = key.strip().replace("-", "+").replace("_", "/")  # URL-safe base64 too
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigurationError(f"key {key_id!r} is not valid base64") from exc
    if not isinstance(key, (bytes, bytearray)):
        raise ConfigurationError(
            f"key {key_id!r} must be bytes or a base64 string, got {type(key).__name__}"
        )
    if len(key) != _KEY_SIZE:
        raise ConfigurationError(
            f"key {key_id!r} is {len(key)} bytes long; AES-256 needs exactly {_KEY_SIZE} "
            "(generate one with checkpointkit.serde.encryption.generate_key())"
        )
    return bytes(key)


def _check_key_id(key_id: Any) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ConfigurationError(
            f"key id {key_id!r} is invalid: use 1-64 characters from A-Z a-z 0-9 . _ -"
        )
    return key_id


def parse_keys(text: str) -> dict[str, bytes]:
    """Parse ``id1:base64key,id2:base64key`` into an ordered ``{id: key}`` dict.

    Raises:
        ConfigurationError: the text is malformed, an id repeats, or a key is
            not 32 bytes. Messages name key ids, never key material.
    """
    keys: dict[str, bytes] = {}
    for index, entry in enumerate(text.split(",")):
        entry = entry.strip()
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise ConfigurationError(
                f"entry {index + 1} of the key list is not 'id:base64key' "
                f"(expected the form id1:base64key,id2:base64key)"
            )
        key_id = _check_key_id(key_id.strip())
        if key_id in keys:
            raise ConfigurationError(f"key id {key_id!r} appears twice in the key list")
        keys[key_id] = _decode_key(key_id, encoded)
    return keys


def _length_prefixed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


class EncryptedSerializer:
    """Encrypt the inner serializer's output with AES-256-GCM, bound to its place.

    Args:
        inner: The serializer whose output is encrypted; defaults to a new
            `MsgpackSerializer`.
        keys: ``{key id: key}``, keys as 32 raw bytes or base64 strings. When
            omitted, read from the ``CHECKPOINTKIT_ENCRYPTION_KEYS``
            environment variable (``id1:base64key,id2:base64key``).
        current_key_id: Id of the key new values are encrypted with; defaults
            to the first key.
        allow_plaintext: Read values stored without encryption (for migrating
            existing data). Off by default: such values raise `DecryptionError`.

    Raises:
        MissingDependencyError: the `cryptography` package is not installed.
        ConfigurationError: no keys, a key is not 32 bytes, an id is invalid or
            unknown, or another argument is invalid.
    """

    def __init__(
        self,
        inner: SerializerProtocol | None = None,
        *,
        keys: Mapping[str, bytes | str] | None = None,
        current_key_id: str | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as exc:
            raise MissingDependencyError.for_extra(
                "EncryptedSerializer", "encryption", "cryptography"
            ) from exc
        if inner is None:
            from checkpointkit.serde.msgpack import MsgpackSerializer

            inner = MsgpackSerializer()
        self.inner = check_inner(inner, "EncryptedSerializer")
        if not isinstance(allow_plaintext, bool):
            raise ConfigurationError(
                f"allow_plaintext must be True or False, got {allow_plaintext!r}"
            )
        self.allow_plaintext = allow_plaintext
        parsed = self._load_keys(keys)
        if current_key_id is None:
            current_key_id = next(iter(parsed))
        elif current_key_id not in parsed:
            raise ConfigurationError(
                f"current_key_id {current_key_id!r} is not one of the key ids {list(parsed)}"
            )
        self.current_key_id = current_key_id
        self.key_ids = tuple(parsed)
        self._ciphers = {key_id: AESGCM(key) for key_id, key in parsed.items()}
        self._invalid_tag = InvalidTag

    @staticmethod
    def _load_keys(keys: Mapping[str, bytes | str] | None) -> dict[str, bytes]:
        if keys is None:
            text = os.environ.get(KEYS_ENV_VAR, "").strip()
            if not text:
                raise ConfigurationError(
                    f"EncryptedSerializer has no keys: pass keys={{id: key}} or set {KEYS_ENV_VAR} "
                    "to 'id1:base64key,...' (generate a key with "
                    "checkpointkit.serde.encryption.generate_key())"
                )
            return parse_keys(text)
        if not isinstance(keys, Mapping):
            raise ConfigurationError(f"keys must be a mapping of key id to key, got {type(keys)}")
        if not keys:
            raise ConfigurationError("keys is empty: EncryptedSerializer needs at least one key")
        return {_check_key_id(kid): _decode_key(kid, key) for kid, key in keys.items()}

    def __repr__(self) -> str:
        return (
            f"EncryptedSerializer({self.inner!r}, key_ids={list(self.key_ids)}, "
            f"current_key_id={self.current_key_id!r}, allow_plaintext={self.allow_plaintext})"
        )

    # -- SerializerProtocol and the contextual variant --------------------------------

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """Serialize and encrypt `obj` with an empty context."""
        return self.dumps_typed_in(obj, b"")

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Decrypt and deserialize a value stored with an empty context.

        Raises:
            DecryptionError: wrong key, tampered or misplaced ciphertext, or a
                plaintext value while `allow_plaintext` is off.
        """
        return self.loads_typed_in(data, b"")

    def dumps_typed_in(self, obj: Any, context: bytes) -> tuple[str, bytes]:
        """Serialize and encrypt `obj`, binding it to `context` (its storage place)."""
        context = _check_context(context)
        tag, plaintext = dumps_in(self.inner, obj, context)
        key_id = self.current_key_id.encode("ascii")
        nonce = os.urandom(_NONCE_SIZE)
        sealed = self._ciphers[self.current_key_id].encrypt(
            nonce, plaintext, _aad(tag, key_id, context)
        )
        header = bytes((_VERSION, len(key_id))) + key_id
        return tag + SUFFIX_AESGCM, header + nonce + sealed

    def loads_typed_in(self, data: tuple[str, bytes], context: bytes) -> Any:
        """Decrypt a value stored at `context` and deserialize it.

        Raises:
            DecryptionError: wrong key, tampered or misplaced ciphertext, or a
                plaintext value while `allow_plaintext` is off.
        """
        context = _check_context(context)
        if not isinstance(data, tuple) or len(data) != 2 or not isinstance(data[0], str):
            raise SerializationError(f"expected a (tag, bytes) pair, got {type(data).__name__}")
        tag, payload = data
        if not tag.endswith(SUFFIX_AESGCM):
            if not self.allow_plaintext:
                raise DecryptionError(
                    f"refusing a stored value that is not encrypted (tag {tag!r}); if you are "
                    "migrating plaintext data, pass EncryptedSerializer(..., allow_plaintext=True)"
                )
            return loads_in(self.inner, data, context)
        inner_tag = tag[: -len(SUFFIX_AESGCM)]
        plaintext = self._decrypt(inner_tag, bytes(payload), context)
        return loads_in(self.inner, (inner_tag, plaintext), context)

    def _decrypt(self, inner_tag: str, payload: bytes, context: bytes) -> bytes:
        if len(payload) < 2 or payload[0] != _VERSION:
            raise DecryptionError("stored ciphertext has an unknown format version or is truncated")
        id_end = 2 + payload[1]
        key_id = payload[2:id_end]
        if len(payload) < id_end + _NONCE_SIZE + _TAG_SIZE:
            raise DecryptionError("stored ciphertext is truncated")
        cipher = self._ciphers.get(key_id.decode("ascii", "replace"))
        if cipher is None:
            raise DecryptionError(
                f"stored value was encrypted with key id {key_id.decode('ascii', 'replace')!r}, "
                f"which is not among the configured ids {list(self.key_ids)}; add that key "
                "to read data written before a rotation"
            )
        nonce = payload[id_end : id_end + _NONCE_SIZE]
        try:
            plaintext: bytes = cipher.decrypt(
                nonce, payload[id_end + _NONCE_SIZE :], _aad(inner_tag, key_id, context)
            )
        except self._invalid_tag as exc:
            raise DecryptionError(
                "stored value failed authentication: wrong key, altered bytes, or copied "
                "from another place (thread, checkpoint or channel)"
            ) from exc
        return plaintext


def _check_context(context: Any) -> bytes:
    if isinstance(context, (bytearray, memoryview)):
        return bytes(context)
    if not isinstance(context, bytes):
        raise SerializationError(f"context must be bytes, got {type(context).__name__}")
    return context


def _aad(inner_tag: str, key_id: bytes, context: bytes) -> bytes:
    return _AAD_PREFIX + _length_prefixed(
        bytes((_VERSION,)), inner_tag.encode("utf-8"), key_id, context
    )
