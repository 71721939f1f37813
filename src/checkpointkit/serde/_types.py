"""Class-based types of the serializer: how each one becomes state and back.

A *type handler* turns an instance into a msgpack-able list ``[ref, *state]``
and rebuilds the instance from that list. ``ref`` is a small integer for the
builtin types (`_wire.BUILTIN_TYPES`) and a ``"module:QualName"`` string for
types the user allowed. Rebuilding never imports anything chosen by the blob:
builtin ids resolve through a fixed table of public modules, and user types
are looked up among class objects the user handed us.

Rebuilding restores state the way ``pickle`` does, without running the
class's ``__init__`` or validators: the blob was produced from an already
valid instance, it is much faster (pydantic validation dominates LangGraph's
load time), and it runs less code for data read from storage. Fields added to
a class after a blob was written get their declared defaults; fields removed
from the class are dropped.

This module also holds the registry of user-allowed types and the public
`register_type` decorator.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from checkpointkit.errors import (
    ConfigurationError,
    CorruptDataError,
    SerializationError,
    UnknownTypeError,
)
from checkpointkit.serde._wire import BUILTIN_TYPES

__all__ = [
    "GLOBAL_REGISTRY",
    "TypeHandler",
    "TypeRegistry",
    "builtin_handler",
    "builtin_handler_for_class",
    "register_type",
    "wire_name",
]

T = TypeVar("T")
_set_attr = object.__setattr__
_MISSING = object()


def _new(cls: Any) -> Any:
    # Instances are restored like pickle does: allocated, then given their state.
    return cls.__new__(cls)


ToState = Callable[[Any], Any]
FromState = Callable[[Any], Any]


def wire_name(cls: type) -> str:
    """Return the default name under which `cls` is stored: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _corrupt(cls: type, detail: str) -> CorruptDataError:
    return CorruptDataError(f"stored {wire_name(cls)} is malformed: {detail}")


def _as_dict(value: Any, cls: type, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _corrupt(cls, f"{what} is a {type(value).__name__}, not a map")
    return value


def _opt_dict(value: Any, cls: type, what: str) -> dict[str, Any] | None:
    return None if value is None else _as_dict(value, cls, what)


def _name_set(value: Any, cls: type) -> set[str]:
    if type(value) is not list:
        raise _corrupt(cls, "the set of assigned fields is not a list")
    return set(value)


class TypeHandler:
    """Encode and rebuild the instances of one class.

    Attributes:
        cls: The class handled.
        ref: What identifies the class in a blob (builtin id or wire name).
    """

    __slots__ = ("cls", "ref")

    def __init__(self, cls: type, ref: int | str) -> None:
        self.cls = cls
        self.ref = ref

    def encode(self, obj: Any) -> list[Any]:
        """Return ``[ref, *state]`` for `obj`."""
        raise NotImplementedError

    def decode(self, state: list[Any]) -> Any:
        """Rebuild an instance from ``[ref, *state]`` (as read back)."""
        raise NotImplementedError

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Rebuild an instance from LangGraph's ``cls(*args, **kwargs)`` form."""
        raise CorruptDataError(
            f"{wire_name(self.cls)} cannot be read from LangGraph's format "
            "(it was registered with custom to_state/from_state functions)"
        )

    def _state_len(self, state: list[Any], low: int, high: int) -> None:
        if not low <= len(state) <= high:
            raise _corrupt(self.cls, f"expected {low}-{high} items, got {len(state)}")


class _PydanticV2Handler(TypeHandler):
    """pydantic v2 models, LangChain messages and documents included.

    State: ``[fields, fields_set | nil, extra | nil, private | nil]`` (always
    all four, so decoding is one unpacking). ``fields_set`` is nil when it
    equals the set of fields.
    """

    __slots__ = ("allows_extra", "field_names", "private_attrs", "undefined")

    def __init__(self, cls: type, ref: int | str) -> None:
        super().__init__(cls, ref)
        fields: dict[str, Any] = cls.model_fields  # type: ignore[attr-defined]
        self.field_names = frozenset(fields)
        self.allows_extra = cls.model_config.get("extra") == "allow"  # type: ignore[attr-defined]
        self.private_attrs: dict[str, Any] = dict(getattr(cls, "__private_attributes__", {}))
        from pydantic_core import PydanticUndefined  # present wherever pydantic v2 is

        self.undefined = PydanticUndefined

    def encode(self, obj: Any) -> list[Any]:
        values = obj.__dict__
        fields_set = obj.__pydantic_fields_set__
        return [
            self.ref,
            values,
            None if fields_set == values.keys() else sorted(fields_set),
            obj.__pydantic_extra__,
            obj.__pydantic_private__,
        ]

    def decode(self, state: list[Any]) -> Any:
        # Hot path (every message of a conversation): checks kept to type tests.
        try:
            _, values, set_list, extra, private = state
        except ValueError:
            raise _corrupt(self.cls, f"expected 5 items, got {len(state)}") from None
        if (
            type(values) is not dict
            or (extra is not None and type(extra) is not dict)
            or (private is not None and type(private) is not dict)
        ):
            raise _corrupt(self.cls, "fields, extra or private attributes are not maps")
        if set_list is None:
            fields_set = set(values)
        elif type(set_list) is list:
            fields_set = set(set_list)
        else:
            raise _corrupt(self.cls, "the set of assigned fields is not a list")
        if values.keys() == self.field_names:
            cls = self.cls
            obj = cls.__new__(cls)  # type: ignore[call-overload]
            _set_attr(obj, "__dict__", values)
            _set_attr(obj, "__pydantic_fields_set__", fields_set)
        else:
            obj = self._construct_drifted(values, fields_set)
            if obj.__pydantic_extra__ and extra is not None:
                extra = {**obj.__pydantic_extra__, **extra}
            elif extra is None:
                extra = obj.__pydantic_extra__
        # Keep the instance consistent with its class even if the blob is
        # crafted or the class changed: extras only where allowed, private
        # attributes only those declared (defaults for new ones).
        if not self.allows_extra:
            extra = None
        elif extra is None:
            extra = {}
        if private is not None or self.private_attrs:
            private = self._private(private)
        _set_attr(obj, "__pydantic_extra__", extra)
        _set_attr(obj, "__pydantic_private__", private)
        return obj

    def _private(self, stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self.private_attrs:
            return None
        out: dict[str, Any] = {}
        for name, attr in self.private_attrs.items():
            if stored is not None and name in stored:
                out[name] = stored[name]
                continue
            default = attr.get_default()
            if default is not self.undefined:
                out[name] = default
        return out

    def _construct_drifted(self, values: dict[str, Any], fields_set: set[str]) -> Any:
        # The class changed since the blob was written: let pydantic fill the
        # defaults of new fields; unknown keys become extras or are dropped.
        if not all(type(key) is str for key in values):
            raise _corrupt(self.cls, "a field name is not a string")
        known = {k: v for k, v in values.items() if k in self.field_names}
        unknown = {k: v for k, v in values.items() if k not in self.field_names}
        obj = self.cls.model_construct(  # type: ignore[attr-defined]
            _fields_set=fields_set & self.field_names, **known
        )
        if unknown and self.allows_extra:
            _set_attr(obj, "__pydantic_extra__", {**(obj.__pydantic_extra__ or {}), **unknown})
        return obj

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        # LangGraph stored model_dump(): nested models are plain dicts, so only
        # validation can rebuild them. Fall back like LangGraph does.
        if args:
            raise _corrupt(self.cls, "positional constructor arguments")
        try:
            return self.cls(**kwargs)
        except Exception:
            return self.cls.model_construct(**kwargs)  # type: ignore[attr-defined]


class _PydanticV1Handler(TypeHandler):
    """pydantic v1 models (``pydantic.v1.BaseModel``).

    State: ``[fields, fields_set | nil, private | nil]``.
    """

    __slots__ = ("field_names", "private_names")

    def __init__(self, cls: type, ref: int | str) -> None:
        super().__init__(cls, ref)
        self.field_names = frozenset(cls.__fields__)  # type: ignore[attr-defined]
        self.private_names = tuple(getattr(cls, "__private_attributes__", {}))

    def encode(self, obj: Any) -> list[Any]:
        values = obj.__dict__
        fields_set = obj.__fields_set__
        set_list = None if fields_set == values.keys() else sorted(fields_set)
        private = {n: getattr(obj, n) for n in self.private_names if hasattr(obj, n)}
        if private:
            return [self.ref, values, set_list, private]
        if set_list is not None:
            return [self.ref, values, set_list]
        return [self.ref, values]

    def decode(self, state: list[Any]) -> Any:
        cls = self.cls
        self._state_len(state, 2, 4)
        values = _as_dict(state[1], cls, "the field map")
        set_list = state[2] if len(state) > 2 else None
        private = _opt_dict(state[3], cls, "private attributes") if len(state) > 3 else None
        fields_set = set(values) if set_list is None else _name_set(set_list, cls)
        if values.keys() == self.field_names:
            obj = _new(cls)
            _set_attr(obj, "__dict__", values)
            _set_attr(obj, "__fields_set__", fields_set)
            obj._init_private_attributes()
        else:
            known = {k: v for k, v in values.items() if k in self.field_names}
            obj = cls.construct(_fields_set=fields_set & self.field_names, **known)  # type: ignore[attr-defined]
        for name, value in (private or {}).items():
            if name not in self.private_names:
                raise _corrupt(cls, f"unknown private attribute {name!r}")
            _set_attr(obj, name, value)
        return obj

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if args:
            raise _corrupt(self.cls, "positional constructor arguments")
        try:
            return self.cls(**kwargs)
        except Exception:
            return self.cls.construct(**kwargs)  # type: ignore[attr-defined]


class _DataclassHandler(TypeHandler):
    """Dataclasses (frozen and slotted ones too). State: ``[fields]``."""

    __slots__ = ("defaults", "name_set", "names")

    def __init__(self, cls: type, ref: int | str) -> None:
        super().__init__(cls, ref)
        fields = dataclasses.fields(cls)
        self.names = tuple(f.name for f in fields)
        self.name_set = frozenset(self.names)
        self.defaults: dict[str, dataclasses.Field[Any]] = {
            f.name: f
            for f in fields
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, {name: getattr(obj, name) for name in self.names}]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 2, 2)
        return self._rebuild(_as_dict(state[1], self.cls, "the field map"))

    def _rebuild(self, values: dict[str, Any]) -> Any:
        cls = self.cls
        if values.keys() != self.name_set:
            values = self._fill_defaults(values)
        obj = _new(cls)
        for name, value in values.items():
            _set_attr(obj, name, value)
        return obj

    def _fill_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.names:
            if name in values:
                out[name] = values[name]
                continue
            field = self.defaults.get(name)
            if field is None:
                raise _corrupt(self.cls, f"field {name!r} is missing and has no default")
            if field.default is not dataclasses.MISSING:
                out[name] = field.default
            else:
                factory = typing.cast(Callable[[], Any], field.default_factory)
                out[name] = factory()
        return out

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if args:
            raise _corrupt(self.cls, "positional constructor arguments")
        return self._rebuild(kwargs)


class _NamedTupleHandler(TypeHandler):
    """``NamedTuple`` / ``namedtuple`` classes. State: ``[items]``."""

    __slots__ = ("defaults", "names")

    def __init__(self, cls: type, ref: int | str) -> None:
        super().__init__(cls, ref)
        self.names: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
        self.defaults: dict[str, Any] = dict(getattr(cls, "_field_defaults", {}))

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, list(obj)]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 2, 2)
        items = state[1]
        if type(items) is not list:
            raise _corrupt(self.cls, "the items are not a list")
        n = len(self.names)
        if len(items) > n:
            raise _corrupt(self.cls, f"{len(items)} items for {n} fields")
        if len(items) < n:
            items = items + [self._default(name) for name in self.names[len(items) :]]
        return tuple.__new__(self.cls, items)  # type: ignore[type-var]

    def _default(self, name: str) -> Any:
        value = self.defaults.get(name, _MISSING)
        if value is _MISSING:
            raise _corrupt(self.cls, f"field {name!r} is missing and has no default")
        return value

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if args or not kwargs.keys() <= set(self.names):
            raise _corrupt(self.cls, "arguments do not match the fields")
        items = [kwargs[n] if n in kwargs else self._default(n) for n in self.names]
        return tuple.__new__(self.cls, items)  # type: ignore[type-var]


class _EnumHandler(TypeHandler):
    """Enum members. State: ``[value]``."""

    __slots__ = ()

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, obj.value]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 2, 2)
        return self._member(state[1])

    def _member(self, value: Any) -> Any:
        try:
            return self.cls(value)
        except (ValueError, TypeError) as exc:
            raise _corrupt(self.cls, f"{value!r} is not a member") from exc

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if len(args) != 1 or kwargs:
            raise _corrupt(self.cls, "expected exactly one value")
        return self._member(args[0])


class _CustomHandler(TypeHandler):
    """Types registered with explicit ``to_state`` / ``from_state`` functions."""

    __slots__ = ("from_state", "to_state")

    def __init__(self, cls: type, ref: int | str, to_state: ToState, from_state: FromState):
        super().__init__(cls, ref)
        self.to_state = to_state
        self.from_state = from_state

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, self.to_state(obj)]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 2, 2)
        return self.from_state(state[1])


class _SendHandler(TypeHandler):
    """LangGraph's ``Send``. State: ``[node, arg, timeout | nil]``."""

    __slots__ = ()

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, obj.node, obj.arg, getattr(obj, "timeout", None)]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 3, 4)
        return self.from_call(state[1:], {})

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if not 2 <= len(args) <= 3 or kwargs or type(args[0]) is not str:
            raise _corrupt(self.cls, "expected (node, arg[, timeout])")
        if len(args) == 3 and args[2] is not None:
            return self.cls(args[0], args[1], timeout=args[2])
        return self.cls(args[0], args[1])


class _ItemHandler(TypeHandler):
    """LangGraph store's ``Item``. State: ``[value, key, namespace, created, updated]``."""

    __slots__ = ()
    _NAMES = ("value", "key", "namespace", "created_at", "updated_at")

    def encode(self, obj: Any) -> list[Any]:
        return [self.ref, obj.value, obj.key, list(obj.namespace), obj.created_at, obj.updated_at]

    def decode(self, state: list[Any]) -> Any:
        self._state_len(state, 6, 6)
        return self.from_call([], dict(zip(self._NAMES, state[1:], strict=True)))

    def from_call(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if (
            args
            or kwargs.keys() != set(self._NAMES)
            or type(kwargs["namespace"]) not in (list, tuple)
        ):
            raise _corrupt(self.cls, "expected value, key, namespace, created_at, updated_at")
        kwargs = {**kwargs, "namespace": tuple(kwargs["namespace"])}
        return self.cls(**kwargs)


# -- kind detection ---------------------------------------------------------------


def _is_pydantic_v2(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None)
    return base is not None and hasattr(cls, "model_fields") and issubclass(cls, base)


def _is_pydantic_v1(cls: type) -> bool:
    for module_name in ("pydantic.v1", "pydantic"):
        module = sys.modules.get(module_name)
        base = getattr(module, "BaseModel", None)
        if base is not None and not hasattr(base, "model_fields") and issubclass(cls, base):
            return True
    return False


def _is_typeddict(cls: type) -> bool:
    if typing.is_typeddict(cls):
        return True
    typing_extensions = sys.modules.get("typing_extensions")
    return bool(typing_extensions and typing_extensions.is_typeddict(cls))


def make_handler(
    cls: type,
    ref: int | str,
    to_state: ToState | None = None,
    from_state: FromState | None = None,
) -> TypeHandler | None:
    """Pick the handler for `cls`; ``None`` for a TypedDict (its values are dicts).

    Raises:
        ConfigurationError: `cls` is of no supported kind and no functions were given.
    """
    if to_state is not None and from_state is not None:
        return _CustomHandler(cls, ref, to_state, from_state)
    if _is_pydantic_v2(cls):
        return _PydanticV2Handler(cls, ref)
    if _is_pydantic_v1(cls):
        return _PydanticV1Handler(cls, ref)
    if dataclasses.is_dataclass(cls):
        return _DataclassHandler(cls, ref)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _NamedTupleHandler(cls, ref)
    if issubclass(cls, enum.Enum):
        return _EnumHandler(cls, ref)
    if _is_typeddict(cls):
        return None
    raise ConfigurationError(
        f"cannot allow {cls!r}: it is not a dataclass, pydantic model, NamedTuple, "
        "Enum or TypedDict. Register it with explicit functions instead: "
        "register_type(cls, to_state=..., from_state=...)"
    )


# -- builtin types -----------------------------------------------------------------

_BUILTIN_HANDLERS: dict[int, TypeHandler] = {}
_BUILTIN_IDS_BY_NAME: dict[str, tuple[int, ...]] = {}
for _type_id, (_module, _name) in BUILTIN_TYPES.items():
    _BUILTIN_IDS_BY_NAME[_name] = (*_BUILTIN_IDS_BY_NAME.get(_name, ()), _type_id)
_SPECIAL_BUILTINS: dict[int, type[TypeHandler]] = {32: _SendHandler, 41: _ItemHandler}


def builtin_handler(type_id: int) -> TypeHandler:
    """Return the handler of builtin type `type_id`, importing its fixed module once.

    Raises:
        CorruptDataError: `type_id` is not a builtin id.
        SerializationError: the library defining the type is not installed.
    """
    handler = _BUILTIN_HANDLERS.get(type_id)
    if handler is not None:
        return handler
    spec = BUILTIN_TYPES.get(type_id)
    if spec is None:
        raise CorruptDataError(f"blob names builtin type id {type_id}, which does not exist")
    module_name, attr = spec
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(
            f"blob holds a {module_name}.{attr}, but it cannot be imported here ({exc}); "
            f"install the package that provides {module_name}"
        ) from exc
    special = _SPECIAL_BUILTINS.get(type_id)
    made = special(cls, type_id) if special is not None else make_handler(cls, type_id)
    if made is None:  # pragma: no cover - the builtin table holds no TypedDict
        raise SerializationError(f"builtin type {module_name}.{attr} has no handler")
    _BUILTIN_HANDLERS[type_id] = made
    return made


def builtin_handler_for_class(cls: type) -> TypeHandler | None:
    """Return the builtin handler of `cls`, or ``None`` if it is not a builtin type."""
    for type_id in _BUILTIN_IDS_BY_NAME.get(cls.__qualname__, ()):
        package = BUILTIN_TYPES[type_id][0].partition(".")[0]
        # Only import a builtin's library when the class comes from it, so a
        # user class that happens to be called "Send" costs no import.
        if cls.__module__.partition(".")[0] != package:
            continue
        try:
            handler = builtin_handler(type_id)
        except SerializationError:
            continue
        if handler.cls is cls:
            return handler
    return None


# -- user registry ----------------------------------------------------------------


class TypeRegistry:
    """Classes the user allowed, indexed for encoding and for both read formats."""

    def __init__(self) -> None:
        self._by_name: dict[str, TypeHandler] = {}
        self._by_class: dict[type, TypeHandler] = {}
        self._by_lg_name: dict[tuple[str, str], TypeHandler] = {}
        self._typeddicts: set[type] = set()

    def add(
        self,
        cls: type,
        *,
        name: str | None = None,
        aliases: Iterable[str] = (),
        to_state: ToState | None = None,
        from_state: FromState | None = None,
    ) -> None:
        """Allow `cls`; see `register_type` for the arguments.

        Raises:
            ConfigurationError: an argument is invalid.
        """
        if not isinstance(cls, type):
            raise ConfigurationError(f"only classes can be allowed, got {cls!r}")
        if (to_state is None) != (from_state is None):
            raise ConfigurationError(
                f"register {cls.__qualname__} with both to_state and from_state, or neither"
            )
        for fn, label in ((to_state, "to_state"), (from_state, "from_state")):
            if fn is not None and not callable(fn):
                raise ConfigurationError(f"{label} must be callable, got {fn!r}")
        names = [wire_name(cls) if name is None else name]
        if isinstance(aliases, str):
            raise ConfigurationError(f"aliases must be a list of names, got the string {aliases!r}")
        names += list(aliases)
        for item in names:
            if not isinstance(item, str) or not item:
                raise ConfigurationError(f"a type name must be a non-empty string, got {item!r}")
        handler = make_handler(cls, names[0], to_state, from_state)
        if handler is None:
            self._typeddicts.add(cls)
            return
        # The last registration of a name wins, so re-running a notebook cell
        # that redefines a class keeps working.
        for item in names:
            self._by_name[item] = handler
        self._by_class[cls] = handler
        self._by_lg_name[(cls.__module__, cls.__name__)] = handler

    def for_class(self, cls: type) -> TypeHandler | None:
        """Return the handler used to encode instances of exactly `cls`."""
        return self._by_class.get(cls)

    def for_name(self, name: str) -> TypeHandler | None:
        """Return the handler of the type stored under `name`."""
        return self._by_name.get(name)

    def for_lg_name(self, module: str, name: str) -> TypeHandler | None:
        """Return the handler of a type LangGraph stored as ``(module, name)``."""
        return self._by_lg_name.get((module, name))

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_class or cls in self._typeddicts


#: Types allowed through `register_type`; every `MsgpackSerializer` consults it.
GLOBAL_REGISTRY = TypeRegistry()


@overload
def register_type(
    cls: type[T],
    /,
    *,
    name: str | None = ...,
    aliases: Iterable[str] = ...,
    to_state: ToState | None = ...,
    from_state: FromState | None = ...,
) -> type[T]: ...


@overload
def register_type(
    cls: None = ...,
    /,
    *,
    name: str | None = ...,
    aliases: Iterable[str] = ...,
    to_state: ToState | None = ...,
    from_state: FromState | None = ...,
) -> Callable[[type[T]], type[T]]: ...


def register_type(
    cls: type[T] | None = None,
    /,
    *,
    name: str | None = None,
    aliases: Iterable[str] = (),
    to_state: ToState | None = None,
    from_state: FromState | None = None,
) -> type[T] | Callable[[type[T]], type[T]]:
    """Allow a class to be stored and read back by every `MsgpackSerializer`.

    Use it as a decorator, bare or with arguments::

        @register_type
        @dataclass
        class Plan:
            steps: list[str]

        @register_type(aliases=["old_module:Plan"])
        class Plan(BaseModel): ...

    Dataclasses, pydantic v1/v2 models, ``NamedTuple`` classes and enums work
    as they are; a ``TypedDict`` is accepted and needs nothing (its values are
    dicts). Any other class needs `to_state` / `from_state`.

    Args:
        cls: The class to allow.
        name: Name stored in blobs; defaults to ``"module:QualName"``.
        aliases: Extra names accepted when reading, e.g. where the class
            lived before it was moved.
        to_state: Turns an instance into serializable data.
        from_state: Rebuilds an instance from that data.

    Returns:
        The class itself (or a decorator returning it).

    Raises:
        ConfigurationError: the class or an argument is invalid.
    """

    def decorate(target: type[T]) -> type[T]:
        GLOBAL_REGISTRY.add(
            target, name=name, aliases=aliases, to_state=to_state, from_state=from_state
        )
        return target

    if cls is None:
        return decorate
    return decorate(cls)


def unknown_type_error(name: str) -> UnknownTypeError:
    """Build the error for a blob naming a type that is not allowed."""
    short = name.rpartition(":")[2].rpartition(".")[2] or "TheClass"
    return UnknownTypeError(
        f"refusing to deserialize type {name!r}: it is not on the allowlist, so nothing "
        f"was imported or called. If you trust it, allow the class with "
        f"MsgpackSerializer(allow=[{short}]) or decorate it with "
        "@checkpointkit.serde.register_type"
    )
