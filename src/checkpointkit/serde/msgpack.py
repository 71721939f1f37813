"""The default serializer: typed msgpack with an allowlist, reading LangGraph's format too.

`MsgpackSerializer` speaks LangGraph's `SerializerProtocol`. It writes the
tag ``ckmsgpack``; the bytes are standard msgpack in which every value msgpack
cannot express natively is an *ext* (a typed extension):

- stdlib values have one ext code each (``tuple``, ``set``, ``datetime``,
  ``UUID``, ``Decimal``, paths, regexes, ... see `_wire`), so they come back
  with the same type, not as lists or strings;
- class-based values (LangChain messages and documents, LangGraph's ``Send``,
  ``Interrupt``, ``Command``..., pydantic models, dataclasses, NamedTuples,
  enums) are ``EXT_OBJECT`` holding ``[type ref, *state]``, where the type ref
  is a small integer for builtin types and ``"module:QualName"`` for types the
  user allowed; numpy and pandas values have ext codes of their own.

**Wire-format decision.** Our tag is deliberately *not* LangGraph's
``msgpack``: LangGraph's `JsonPlusSerializer` turns ext codes it does not know
into ``None``, so sharing the tag would let an official saver silently drop
data it cannot read. With a distinct tag it raises instead. Our ext codes
(16 and up) do not overlap LangGraph's (0-7) either. Reading dispatches on the
tag: ``ckmsgpack`` is ours; ``msgpack``, ``json``, ``null``, ``bytes`` and
``bytearray`` are LangGraph's and go through `_langgraph` with the *same*
allowlist; ``pickle`` is refused unless ``unsafe_allow_pickle=True``.

**Safety.** Decoding never imports a module or calls a class named by the
blob unless the name is on the allowlist, which is checked first: builtin
types resolve through a fixed table of public modules, and user types through
class objects registered with `allow=[...]`, `MsgpackSerializer.register` or
`register_type`. Anything else raises `UnknownTypeError`. Writing an
unregistered class fails the same way, so a value that could not be read back
is never stored. Sizes are bounded by the blob (msgpack refuses to declare
more items than there are bytes), nesting of typed values is capped
(`max_depth`), and any malformed input raises `CorruptDataError`.

**Speed.** Values are packed by msgpack's C extension; only typed values call
back into Python. Class-based values store their attribute dict and are
rebuilt without validation (see `_types`); nested packers are reused within
a call rather than created per value.

Known limits: nested ``bytearray`` and ``memoryview`` values come back as
``bytes`` (msgpack packs them natively; a top-level ``bytearray`` is kept);
exceptions are stored as their ``repr`` string, as LangGraph does for error
writes; shared references and cycles are not preserved.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

import msgpack
import msgpack.exceptions
from msgpack import ExtType

from checkpointkit.errors import (
    CheckpointKitError,
    ConfigurationError,
    CorruptDataError,
    SerializationError,
    UnknownTypeError,
)
from checkpointkit.serde import _wire as w
from checkpointkit.serde._langgraph import loads_langgraph
from checkpointkit.serde._scientific import SCIENTIFIC_DECODERS, scientific_encoder
from checkpointkit.serde._stdlib import STDLIB_DECODERS, STDLIB_ENCODERS, Decoder, Encoder, ext
from checkpointkit.serde._types import (
    _BUILTIN_HANDLERS,
    GLOBAL_REGISTRY,
    FromState,
    ToState,
    TypeHandler,
    TypeRegistry,
    builtin_handler,
    builtin_handler_for_class,
    unknown_type_error,
)

__all__ = ["DEFAULT_MAX_DEPTH", "MsgpackSerializer"]

T = TypeVar("T")

#: Default cap on how deeply typed values (tuples, models, ...) may nest.
DEFAULT_MAX_DEPTH = 128
_DEPTH_LIMIT = 512  # keeps the Python stack well clear of RecursionError
_PACKER_BUFFER = 4096
_UNICODE_ERRORS = "surrogatepass"  # lone surrogates round-trip instead of failing
_NATIVE_TYPES = frozenset({type(None), bool, int, float, str, bytes, bytearray, list, dict})


class _Encoding:
    """State of one `dumps_typed` call: the nesting depth and reusable packers."""

    __slots__ = ("depth", "encoders", "packers", "serializer", "unicode_errors")

    def __init__(self, serializer: MsgpackSerializer, unicode_errors: str | None) -> None:
        self.serializer = serializer
        self.encoders = serializer._encoders
        self.depth = 0
        self.packers: list[msgpack.Packer] = []
        self.unicode_errors = unicode_errors

    def default(self, obj: Any) -> Any:
        encoder = self.encoders.get(type(obj))
        if encoder is None:
            encoder = self.serializer._resolve_encoder(type(obj))
        return encoder(self.pack, obj)

    def pack(self, value: Any) -> bytes:
        depth = self.depth
        try:
            packer = self.packers[depth]
        except IndexError:
            packer = self._new_packer(depth)
        self.depth = depth + 1
        try:
            return packer.pack(value)  # type: ignore[no-any-return]
        finally:
            self.depth = depth

    def _new_packer(self, depth: int) -> msgpack.Packer:
        max_depth = self.serializer.max_depth
        if depth >= max_depth:
            raise SerializationError(
                f"value nests typed objects more than max_depth={max_depth} "
                "levels deep (or contains a reference cycle)"
            )
        # One packer per nesting level, reused for every value at that level:
        # creating a packer per value costs more than packing a message.
        packer = msgpack.Packer(
            default=self.default,
            strict_types=True,  # tuples, subclasses... reach `default`
            use_bin_type=True,
            autoreset=True,
            unicode_errors=self.unicode_errors,
            buf_size=_PACKER_BUFFER,
        )
        self.packers.append(packer)
        return packer


class _Decoding:
    """State of one `loads_typed` call: the nesting depth."""

    __slots__ = ("builtins", "decoders", "depth", "max_depth", "serializer")

    def __init__(self, serializer: MsgpackSerializer) -> None:
        self.serializer = serializer
        self.decoders = serializer._decoders
        self.builtins = _BUILTIN_HANDLERS
        self.max_depth = serializer.max_depth
        self.depth = 0

    def unpack(self, data: bytes) -> Any:
        depth = self.depth
        if depth >= self.max_depth:
            raise CorruptDataError(
                f"blob nests typed values more than max_depth={self.max_depth} levels deep"
            )
        self.depth = depth + 1
        try:
            return msgpack.unpackb(
                data,
                ext_hook=self.hook,
                raw=False,
                strict_map_key=False,  # int, tuple, UUID... keys are legitimate
                unicode_errors=_UNICODE_ERRORS,
                timestamp=3,  # a stray msgpack timestamp decodes to an allowed datetime
            )
        finally:
            self.depth = depth

    def hook(self, code: int, data: bytes) -> Any:
        if code == w.EXT_OBJECT:  # the hot path, inlined
            state = self.unpack(data)
            if type(state) is not list or not state:
                raise CorruptDataError("stored object is malformed")
            handler = self.builtins.get(state[0])
            if handler is None:
                handler = self.serializer._handler_for_ref(state[0])
            return handler.decode(state)
        decoder = self.decoders.get(code)
        if decoder is None:
            raise CorruptDataError(f"blob holds unknown ext code {code}")
        return decoder(self.unpack, data)


class MsgpackSerializer:
    """Typed msgpack serializer with an allowlist; the checkpointkit default.

    Writes the tag ``ckmsgpack`` and reads it plus every tag LangGraph's
    `JsonPlusSerializer` writes. See the module docstring for the format.

    Args:
        allow: Extra classes (dataclasses, pydantic models, NamedTuples,
            enums, TypedDicts) this instance may write and read, on top of the
            builtin types and those registered with `register_type`.
        unsafe_allow_pickle: **Unsafe.** Pickle values of unsupported types
            when writing, and unpickle them (and LangGraph ``pickle`` blobs)
            when reading. Unpickling runs arbitrary code from the storage;
            only turn this on if nobody else can write to it.
        max_depth: How deeply typed values may nest, when writing and reading.

    Raises:
        ConfigurationError: an argument is invalid.
    """

    def __init__(
        self,
        *,
        allow: Iterable[type] = (),
        unsafe_allow_pickle: bool = False,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if not isinstance(unsafe_allow_pickle, bool):
            raise ConfigurationError(
                f"unsafe_allow_pickle must be True or False, got {unsafe_allow_pickle!r}"
            )
        if type(max_depth) is not int or not 1 <= max_depth <= _DEPTH_LIMIT:
            raise ConfigurationError(
                f"max_depth must be an integer from 1 to {_DEPTH_LIMIT}, got {max_depth!r}"
            )
        if isinstance(allow, (str, bytes, type)) or not isinstance(allow, Iterable):
            raise ConfigurationError(f"allow must be a list of classes, got {allow!r}")
        self.unsafe_allow_pickle = unsafe_allow_pickle
        self.max_depth = max_depth
        self._registry = TypeRegistry()
        for cls in allow:
            self._registry.add(cls)
        self._encoders: dict[type, Encoder] = dict(STDLIB_ENCODERS)
        self._decoders: dict[int, Decoder] = {
            **STDLIB_DECODERS,
            **SCIENTIFIC_DECODERS,
            w.EXT_PICKLE: self._decode_pickle,
        }
        self._local = threading.local()

    def __repr__(self) -> str:
        pickle_note = ", unsafe_allow_pickle=True" if self.unsafe_allow_pickle else ""
        return f"MsgpackSerializer(max_depth={self.max_depth}{pickle_note})"

    # -- registration ----------------------------------------------------------------

    @overload
    def register(
        self,
        cls: type[T],
        /,
        *,
        name: str | None = ...,
        aliases: Iterable[str] = ...,
        to_state: ToState | None = ...,
        from_state: FromState | None = ...,
    ) -> type[T]: ...

    @overload
    def register(
        self,
        cls: None = ...,
        /,
        *,
        name: str | None = ...,
        aliases: Iterable[str] = ...,
        to_state: ToState | None = ...,
        from_state: FromState | None = ...,
    ) -> Callable[[type[T]], type[T]]: ...

    def register(
        self,
        cls: type[T] | None = None,
        /,
        *,
        name: str | None = None,
        aliases: Iterable[str] = (),
        to_state: ToState | None = None,
        from_state: FromState | None = None,
    ) -> type[T] | Callable[[type[T]], type[T]]:
        """Allow a class for this serializer only; usable as a decorator.

        Takes the same arguments as `checkpointkit.serde.register_type`.

        Returns:
            The class itself (or a decorator returning it).

        Raises:
            ConfigurationError: the class or an argument is invalid.
        """

        def decorate(target: type[T]) -> type[T]:
            self._registry.add(
                target, name=name, aliases=aliases, to_state=to_state, from_state=from_state
            )
            self._encoders.pop(target, None)
            return target

        return decorate if cls is None else decorate(cls)

    def is_allowed(self, cls: type) -> bool:
        """Tell whether instances of exactly `cls` can be written and read back."""
        return (
            cls in _NATIVE_TYPES
            or cls in self._encoders
            or cls in self._registry
            or cls in GLOBAL_REGISTRY
            or self._lookup_encoder(cls) is not None
        )

    # -- SerializerProtocol ------------------------------------------------------------

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """Serialize `obj` to ``("ckmsgpack", bytes)``.

        Raises:
            UnknownTypeError: `obj` holds a value of a type that is not allowed.
            SerializationError: `obj` cannot be serialized for another reason.
        """
        if type(obj) is bytearray:  # msgpack would pack it as bytes
            return w.TAG_CKMSGPACK, self._pack_top(ExtType(w.EXT_BYTEARRAY, bytes(obj)))
        return w.TAG_CKMSGPACK, self._pack_top(obj)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Deserialize a ``(tag, bytes)`` pair written by us or by LangGraph.

        Raises:
            UnknownTypeError: the blob names a type that is not allowed.
            CorruptDataError: the blob is malformed.
            SerializationError: the tag is unknown.
        """
        tag, payload = _split_blob(data)
        if tag == w.TAG_CKMSGPACK:
            return self._decode(payload)
        return loads_langgraph(self, tag, payload)

    # -- encoding --------------------------------------------------------------------

    def _pack_top(self, obj: Any) -> bytes:
        local = self._local
        encoding: _Encoding | None = getattr(local, "encoding", None)
        # Reuse this thread's packers unless a value's to_state re-enters us.
        if encoding is None or encoding.depth:
            encoding = _Encoding(self, None)
            if getattr(local, "encoding", None) is None:
                local.encoding = encoding
        try:
            try:
                return encoding.pack(obj)
            except UnicodeEncodeError:
                # Lone surrogates: rare, so only then pay for the slower packer.
                return _Encoding(self, _UNICODE_ERRORS).pack(obj)
        except CheckpointKitError:
            raise
        except RecursionError as exc:
            raise SerializationError(
                "value is nested too deeply to serialize (or contains a reference cycle)"
            ) from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"cannot serialize value: {exc}") from exc

    def _resolve_encoder(self, cls: type) -> Encoder:
        """Find (and cache) how to encode exact type `cls`; raise if it is not allowed."""
        encoder = self._lookup_encoder(cls)
        if encoder is not None:
            self._encoders[cls] = encoder
            return encoder
        if issubclass(cls, BaseException):
            # LangGraph stores task errors this way; the type is not kept.
            return _encode_exception
        if self.unsafe_allow_pickle:
            return _encode_pickle
        raise UnknownTypeError(
            f"cannot serialize {cls.__module__}.{cls.__qualname__}: the type is not on the "
            f"allowlist of {type(self).__name__}. Allow it with "
            f"MsgpackSerializer(allow=[{cls.__qualname__}]) or decorate it with "
            "@checkpointkit.serde.register_type (dataclasses, pydantic models, NamedTuples "
            "and enums work as they are; other classes need to_state/from_state)"
        )

    def _lookup_encoder(self, cls: type) -> Encoder | None:
        handler = (
            self._registry.for_class(cls)
            or GLOBAL_REGISTRY.for_class(cls)
            or builtin_handler_for_class(cls)
        )
        if handler is not None:
            return _object_encoder(handler)
        return scientific_encoder(cls)

    # -- decoding --------------------------------------------------------------------

    def _decode(self, payload: bytes) -> Any:
        try:
            return _Decoding(self).unpack(payload)
        except CheckpointKitError:
            raise
        except (RecursionError, msgpack.exceptions.StackError) as exc:
            raise CorruptDataError("blob is nested too deeply") from exc
        except Exception as exc:
            # Whatever a crafted blob makes msgpack or a constructor raise, the
            # caller gets one typed error (with the cause chained).
            raise CorruptDataError(f"cannot decode ckmsgpack blob: {exc!r}") from exc

    def _handler_for_ref(self, ref: Any) -> TypeHandler:
        if type(ref) is int:
            return builtin_handler(ref)
        if type(ref) is str:
            handler = self._registry.for_name(ref) or GLOBAL_REGISTRY.for_name(ref)
            if handler is None:
                raise unknown_type_error(ref)
            return handler
        raise CorruptDataError(f"stored object names its type with a {type(ref).__name__}")

    def _handler_for_lg_name(self, module: Any, name: Any) -> TypeHandler:
        """Return the handler of a type LangGraph stored as ``(module, name)``."""
        if type(module) is not str or type(name) is not str:
            raise CorruptDataError("LangGraph blob names a type with a non-string")
        type_id = w.LG_BUILTIN_NAMES.get((module, name))
        if type_id is not None:
            return builtin_handler(type_id)
        handler = self._registry.for_lg_name(module, name) or GLOBAL_REGISTRY.for_lg_name(
            module, name
        )
        if handler is None:
            raise unknown_type_error(f"{module}:{name}")
        return handler

    def _decode_pickle(self, unpack: Callable[[bytes], Any], data: bytes) -> Any:
        return self._unpickle(data)

    def _unpickle(self, data: bytes) -> Any:
        if not self.unsafe_allow_pickle:
            raise UnknownTypeError(
                "refusing to unpickle a stored value: pickle can run arbitrary code. "
                "If only you can write to this storage, pass "
                "MsgpackSerializer(unsafe_allow_pickle=True)"
            )
        return pickle.loads(data)  # noqa: S301 - explicitly enabled by the user


def _split_blob(data: Any) -> tuple[str, bytes]:
    if not isinstance(data, tuple) or len(data) != 2:
        raise SerializationError(f"expected a (tag, bytes) pair, got {type(data).__name__}")
    tag, payload = data
    if not isinstance(tag, str):
        raise SerializationError(f"blob tag must be a string, got {tag!r}")
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    elif not isinstance(payload, bytes):
        raise SerializationError(f"blob payload must be bytes, got {type(payload).__name__}")
    return tag, payload


def _object_encoder(handler: TypeHandler) -> Encoder:
    encode = handler.encode

    def encode_object(pack: Callable[[Any], bytes], obj: Any) -> ExtType:
        return ext(w.EXT_OBJECT, pack(encode(obj)))

    return encode_object


def _encode_exception(pack: Callable[[Any], bytes], obj: Any) -> str:
    return repr(obj)


def _encode_pickle(pack: Callable[[Any], bytes], obj: Any) -> ExtType:
    try:
        return ext(w.EXT_PICKLE, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        raise SerializationError(f"cannot pickle {type(obj).__qualname__}: {exc}") from exc
