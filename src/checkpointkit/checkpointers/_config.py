"""Config and filter parsing shared by every checkpointer.

LangGraph passes a `RunnableConfig` whose ``configurable`` mapping names the
thread, namespace and checkpoint. These functions read it and raise typed
errors (`MissingThreadIdError`, `ConfigurationError`, `InvalidFilterError`)
that name what is wrong, before anything is read or written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast
from uuid import UUID

from langchain_core.runnables import RunnableConfig

from checkpointkit.errors import ConfigurationError, InvalidFilterError, MissingThreadIdError

__all__ = [
    "check_text",
    "check_thread_id",
    "checkpoint_id_of",
    "checkpoint_ns_of",
    "config_for",
    "metadata_matches",
    "thread_id_of",
    "validate_filter",
]


def _configurable(config: RunnableConfig | None) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigurationError(f"config must be a mapping, got {type(config).__name__}")
    conf = config.get("configurable")
    if not isinstance(conf, Mapping):
        raise MissingThreadIdError(
            "config has no 'configurable' mapping; pass {'configurable': {'thread_id': ...}}"
        )
    return conf


def thread_id_of(config: RunnableConfig | None) -> str:
    """Return the config's ``thread_id`` as a string.

    Raises:
        MissingThreadIdError: there is no usable ``configurable.thread_id``.
    """
    value = _configurable(config).get("thread_id")
    if value is None or value == "":
        raise MissingThreadIdError(
            "config has no 'thread_id': pass {'configurable': {'thread_id': ...}}"
        )
    return check_thread_id(value)


def check_thread_id(value: Any) -> str:
    """Return a thread id given as an argument (a copy's or fork's target) as a string.

    Raises:
        ConfigurationError: it is empty, or not a string, an int or a UUID; a
            thread stored under such an id could not be named in a config.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, UUID)):
        raise ConfigurationError(
            f"thread_id must be a string, an int or a UUID, got {type(value).__name__}"
        )
    if value == "":
        raise ConfigurationError("thread_id must not be empty")
    return check_text("thread_id", str(value))


def check_text(what: str, value: str) -> str:
    """Return `value`, an id or name to be stored, if every backend can store it.

    PostgreSQL text holds no NUL, and no backend can encode a lone surrogate
    to UTF-8: refused here, so every backend refuses them alike.

    Raises:
        ConfigurationError: `value` holds a NUL character or a lone surrogate.
    """
    if "\x00" in value:
        raise ConfigurationError(f"{what} {value!r} contains a NUL character")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise ConfigurationError(
                f"{what} {value!r} is not valid Unicode (a lone surrogate): {exc}"
            ) from None
    return value


def checkpoint_ns_of(config: RunnableConfig | None) -> str:
    """Return the config's checkpoint namespace ("" for the root graph)."""
    ns = _configurable(config).get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise ConfigurationError(f"checkpoint_ns must be a string, got {type(ns).__name__}")
    return check_text("checkpoint_ns", ns)


def checkpoint_id_of(config: RunnableConfig | None) -> str | None:
    """Return the config's ``checkpoint_id``, or None when it names none."""
    value = _configurable(config).get("checkpoint_id")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"checkpoint_id must be a string, got {type(value).__name__}")
    return check_text("checkpoint_id", value)


def config_for(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    """Build the config that names one stored checkpoint."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


_FILTER_SCALARS = (str, int, float, bool, type(None))


def _check_filter_value(key: str, value: Any) -> None:
    if isinstance(value, _FILTER_SCALARS):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_filter_value(key, item)
        return
    if isinstance(value, Mapping):
        for k, item in value.items():
            if not isinstance(k, str):
                raise InvalidFilterError(f"filter[{key!r}] has a non-string key {k!r}")
            _check_filter_value(key, item)
        return
    raise InvalidFilterError(
        f"filter[{key!r}] is a {type(value).__name__}; metadata filters take JSON values "
        "(str, int, float, bool, None, lists and dicts of them)"
    )


def validate_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a metadata filter and return it as JSON-normal values.

    Raises:
        InvalidFilterError: a key is not a non-empty string or a value is not JSON.
    """
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(f"filter must be a mapping, got {type(filter).__name__}")
    for key, value in filter.items():
        if not isinstance(key, str) or not key:
            raise InvalidFilterError(f"filter keys must be non-empty strings, got {key!r}")
        if "\x00" in key:
            raise InvalidFilterError(f"filter key {key!r} contains a NUL character")
        _check_filter_value(key, value)
    # Round-trip through JSON so tuples compare like the lists stored.
    return cast(dict[str, Any], json.loads(json.dumps(dict(filter))))


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
    """Tell whether decoded metadata has every key of a validated filter."""
    return all(key in metadata and metadata[key] == value for key, value in filter.items())
