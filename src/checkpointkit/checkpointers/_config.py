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

from langchain_core.runnables import RunnableConfig

from checkpointkit.errors import ConfigurationError, InvalidFilterError, MissingThreadIdError

__all__ = [
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
    if isinstance(value, bool) or (not isinstance(value, (str, int)) and not hasattr(value, "hex")):
        raise ConfigurationError(
            f"thread_id must be a string, an int or a UUID, got {type(value).__name__}"
        )
    return str(value)


def checkpoint_ns_of(config: RunnableConfig | None) -> str:
    """Return the config's checkpoint namespace ("" for the root graph)."""
    ns = _configurable(config).get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise ConfigurationError(f"checkpoint_ns must be a string, got {type(ns).__name__}")
    return ns


def checkpoint_id_of(config: RunnableConfig | None) -> str | None:
    """Return the config's ``checkpoint_id``, or None when it names none."""
    value = _configurable(config).get("checkpoint_id")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"checkpoint_id must be a string, got {type(value).__name__}")
    return value


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
