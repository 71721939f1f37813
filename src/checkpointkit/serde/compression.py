"""zstd compression around any serializer, with a cap against decompression bombs.

`CompressedSerializer` wraps an inner serializer. Values whose inner bytes
reach `threshold` are compressed with zstd (the `zstandard` package, extra
``zstd``) and stored under the inner tag plus ``+zstd``; smaller values, and
values that do not shrink, keep the inner tag and bytes unchanged, so reading
dispatches on the tag alone and old uncompressed data stays readable.

Reading never allocates more than `max_decompressed_size`: the size a frame
declares is checked before anything is allocated, frames that declare no size
are streamed in chunks and abandoned past the cap, and a frame whose content
exceeds its declared size fails inside zstd.

The ``*_in`` methods forward the storage context to a contextual inner
serializer (see `checkpointkit.serde.base`), so ``Compressed(Encrypted(...))``
still binds ciphertexts to their place; over a non-contextual inner serializer
they are absent, so the stack is not reported as contextual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from checkpointkit.errors import (
    ConfigurationError,
    CorruptDataError,
    MissingDependencyError,
    SerializationError,
)
from checkpointkit.serde._wire import SUFFIX_ZSTD
from checkpointkit.serde.base import SerializerProtocol, dumps_in, is_contextual, loads_in

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "DEFAULT_THRESHOLD",
    "CompressedSerializer",
]

DEFAULT_THRESHOLD = 1024
# Level 1, not zstd's usual 3: checkpointers compress on every step, and on a
# conversation level 3 takes about twice as long for about 7 % smaller output.
DEFAULT_LEVEL = 1
DEFAULT_MAX_DECOMPRESSED_SIZE = 256 * 1024 * 1024
_MAX_LEVEL = 22
_STREAM_CHUNK = 1024 * 1024


def check_inner(inner: Any, owner: str) -> SerializerProtocol:
    """Return `inner` if it speaks `SerializerProtocol`; raise `ConfigurationError` if not."""
    if not (
        callable(getattr(inner, "dumps_typed", None))
        and callable(getattr(inner, "loads_typed", None))
    ):
        raise ConfigurationError(
            f"{owner} needs an inner serializer with dumps_typed/loads_typed, got {inner!r}"
        )
    return inner  # type: ignore[no-any-return]


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigurationError(f"{name} must be an integer {bound}, got {value!r}")
    return value


class CompressedSerializer:
    """Compress the inner serializer's output with zstd above a size threshold.

    Args:
        inner: The serializer whose output is compressed; defaults to a new
            `MsgpackSerializer`.
        threshold: Inner outputs of at least this many bytes are compressed.
        level: zstd compression level, 1 (fastest, the default) to 22 (smallest).
        max_decompressed_size: Largest decompressed value accepted when
            reading, in bytes; larger ones raise `CorruptDataError`.

    Raises:
        MissingDependencyError: the `zstandard` package is not installed.
        ConfigurationError: an argument is invalid.
    """

    def __init__(
        self,
        inner: SerializerProtocol | None = None,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        level: int = DEFAULT_LEVEL,
        max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    ) -> None:
        try:
            import zstandard
        except ImportError as exc:
            raise MissingDependencyError.for_extra(
                "CompressedSerializer", "zstd", "zstandard"
            ) from exc
        if inner is None:
            from checkpointkit.serde.msgpack import MsgpackSerializer

            inner = MsgpackSerializer()
        self.inner = check_inner(inner, "CompressedSerializer")
        self.threshold = _check_int("threshold", threshold, 0)
        self.level = _check_int("level", level, 1, _MAX_LEVEL)
        self.max_decompressed_size = _check_int("max_decompressed_size", max_decompressed_size, 1)
        self._zstd = zstandard
        # zstd contexts must not be shared between threads.
        self._local = threading.local()

    def __repr__(self) -> str:
        return (
            f"CompressedSerializer({self.inner!r}, threshold={self.threshold}, "
            f"level={self.level}, max_decompressed_size={self.max_decompressed_size})"
        )

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """Serialize with the inner serializer, then compress if large enough."""
        return self._compress(self.inner.dumps_typed(obj))

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Decompress if the tag says so, then deserialize with the inner serializer.

        Raises:
            CorruptDataError: the compressed data is malformed or too large.
        """
        return self.inner.loads_typed(self._decompress(data))

    # The contextual methods exist only when the inner serializer binds the
    # context: `is_contextual()` then reports the truth for the whole stack, and
    # checkpointers skip encoding the place when nothing below uses it.

    @property
    def dumps_typed_in(self) -> Callable[[Any, bytes], tuple[str, bytes]]:
        """Like `dumps_typed`, forwarding `context` to the contextual inner serializer."""
        if not is_contextual(self.inner):
            raise AttributeError("dumps_typed_in: the inner serializer is not contextual")
        return self._dumps_typed_in

    @property
    def loads_typed_in(self) -> Callable[[tuple[str, bytes], bytes], Any]:
        """Like `loads_typed`, forwarding `context` to the contextual inner serializer."""
        if not is_contextual(self.inner):
            raise AttributeError("loads_typed_in: the inner serializer is not contextual")
        return self._loads_typed_in

    def _dumps_typed_in(self, obj: Any, context: bytes) -> tuple[str, bytes]:
        return self._compress(dumps_in(self.inner, obj, context))

    def _loads_typed_in(self, data: tuple[str, bytes], context: bytes) -> Any:
        return loads_in(self.inner, self._decompress(data), context)

    # -- internals --------------------------------------------------------------------

    def _contexts(self) -> tuple[Any, Any]:
        local = self._local
        contexts: tuple[Any, Any] | None = getattr(local, "contexts", None)
        if contexts is None:
            contexts = (
                self._zstd.ZstdCompressor(level=self.level, write_content_size=True),
                self._zstd.ZstdDecompressor(),
            )
            local.contexts = contexts
        return contexts

    def _compress(self, typed: tuple[str, bytes]) -> tuple[str, bytes]:
        tag, raw = typed
        if len(raw) < self.threshold:
            return tag, raw
        compressed: bytes = self._contexts()[0].compress(raw)
        if len(compressed) >= len(raw):  # incompressible: reading it back costs for nothing
            return tag, raw
        return tag + SUFFIX_ZSTD, compressed

    def _decompress(self, data: tuple[str, bytes]) -> tuple[str, bytes]:
        if not isinstance(data, tuple) or len(data) != 2 or not isinstance(data[0], str):
            raise SerializationError(f"expected a (tag, bytes) pair, got {type(data).__name__}")
        tag, payload = data
        if not tag.endswith(SUFFIX_ZSTD):
            return data
        zstd = self._zstd
        cap = self.max_decompressed_size
        try:
            declared = zstd.frame_content_size(payload)
        except zstd.ZstdError as exc:
            raise CorruptDataError(f"stored zstd frame is malformed: {exc}") from exc
        if declared > cap:
            raise CorruptDataError(
                f"stored value would decompress to {declared} bytes, more than "
                f"max_decompressed_size={cap}; raise the limit if the value is legitimate"
            )
        try:
            if declared >= 0:
                # zstd allocates the declared size (checked above) and fails
                # if the frame holds more than it declared.
                raw: bytes = self._contexts()[1].decompress(payload)
            else:
                raw = self._stream(payload, cap)
        except zstd.ZstdError as exc:
            raise CorruptDataError(f"stored zstd frame is corrupt: {exc}") from exc
        return tag[: -len(SUFFIX_ZSTD)], raw

    def _stream(self, payload: bytes, cap: int) -> bytes:
        # No declared size (not written by us): read in chunks up to the cap.
        reader = self._zstd.ZstdDecompressor().stream_reader(payload)
        chunks: list[bytes] = []
        total = 0
        while chunk := reader.read(_STREAM_CHUNK):
            total += len(chunk)
            if total > cap:
                raise CorruptDataError(
                    f"stored value decompresses to more than max_decompressed_size={cap} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)
