"""Argument checking of the PostgreSQL checkpointer: list queries, connections, retention.

Pure functions shared by the async saver and its generated sync twin; each
raises a typed `ConfigurationError` naming the offending value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from langchain_core.runnables import RunnableConfig
from psycopg.conninfo import conninfo_to_dict

from checkpointkit.checkpointers.base import (
    checkpoint_id_of,
    checkpoint_ns_of,
    thread_id_of,
    validate_filter,
)
from checkpointkit.checkpointers.postgres._codec import check_texts, filter_json
from checkpointkit.checkpointers.postgres._queries import ListShape
from checkpointkit.errors import ConfigurationError

__all__ = ["ListSpec", "config_keys", "connection_kwargs", "list_spec", "retention"]

_SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")


@dataclass(frozen=True)
class ListSpec:
    """A checked ``list`` request: which statement, its parameters, the exact filter."""

    shape: ListShape
    params: Mapping[str, Any]
    wanted: Mapping[str, Any]  # the validated filter, checked exactly on each candidate
    limit: int | None


def config_keys(config: RunnableConfig) -> tuple[str, str, str | None]:
    """Return (thread id, namespace, checkpoint id) of a config, checked for storage.

    Raises:
        MissingThreadIdError: the config names no thread.
        ConfigurationError: a key is malformed or cannot be stored as text.
    """
    keys = (thread_id_of(config), checkpoint_ns_of(config), checkpoint_id_of(config))
    check_texts("checkpoint key", keys)
    return keys


def list_spec(
    config: RunnableConfig | None,
    filter: Mapping[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
    *,
    values: bool,
) -> ListSpec:
    """Check the arguments of ``list`` the way the memory checkpointer does.

    Raises:
        InvalidFilterError: the filter is not a mapping of JSON values.
        ConfigurationError: a config or the limit is malformed.
    """
    wanted = validate_filter(filter)
    before_id = checkpoint_id_of(before) if before else None
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative int, got {limit!r}")
    thread_id: str | None = None
    ns: str | None = None
    checkpoint_id: str | None = None
    if config is not None:
        thread_id = thread_id_of(config)
        if config["configurable"].get("checkpoint_ns") is not None:
            ns = checkpoint_ns_of(config)
        checkpoint_id = checkpoint_id_of(config)
    check_texts("list key", (thread_id, ns, checkpoint_id, before_id))
    shape = ListShape(
        thread=thread_id is not None,
        namespace=ns is not None,
        checkpoint_id=checkpoint_id is not None,
        before=before_id is not None,
        filter=bool(wanted),
        cursor=False,
        values=values,
    )
    params = {
        "thread_id": thread_id,
        "checkpoint_ns": ns,
        "checkpoint_id": checkpoint_id,
        "before": before_id,
        "filter": filter_json(wanted),
    }
    return ListSpec(shape, params, wanted, limit)


def connection_kwargs(
    conn_string: str,
    prepare_threshold: int | None,
    synchronous_commit: str | None,
    connect_kwargs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Return the keyword arguments of the connections `from_conn_string` opens.

    Autocommit (one round trip per single-statement operation), no server-side
    prepared statements unless asked (PgBouncer's transaction mode), and
    ``synchronous_commit`` added to the startup ``options`` already given.

    Raises:
        ConfigurationError: `synchronous_commit` is not a PostgreSQL value.
    """
    kwargs = dict(connect_kwargs or {})
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("prepare_threshold", prepare_threshold)
    if synchronous_commit is not None:
        if synchronous_commit not in _SYNCHRONOUS_COMMIT:
            raise ConfigurationError(
                f"synchronous_commit must be one of {', '.join(_SYNCHRONOUS_COMMIT)}, "
                f"got {synchronous_commit!r}"
            )
        # Connection kwargs replace the URI's own `options`: keep them.
        options = kwargs.get("options", conninfo_to_dict(conn_string).get("options") or "")
        kwargs["options"] = f"{options} -c synchronous_commit={synchronous_commit}".strip()
    return kwargs


def retention(
    ttl: timedelta | float | None, keep_last: int | None
) -> tuple[float | None, int | None]:
    """Check a retention policy; return the TTL in seconds and `keep_last`.

    Raises:
        ConfigurationError: the TTL is not positive, or `keep_last` is not an int >= 1.
    """
    seconds: float | None = None
    if ttl is not None:
        if isinstance(ttl, timedelta):
            seconds = ttl.total_seconds()
        elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
            seconds = float(ttl)
        else:
            raise ConfigurationError(f"ttl must be a timedelta or seconds, got {ttl!r}")
        if not seconds > 0:
            raise ConfigurationError(f"ttl must be positive, got {ttl!r}")
    if keep_last is not None and (
        not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 1
    ):
        raise ConfigurationError(f"keep_last must be an int >= 1, got {keep_last!r}")
    return seconds, keep_last
