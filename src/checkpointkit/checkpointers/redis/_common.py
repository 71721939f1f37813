"""I/O-free parts of the Redis checkpointer shared by its sync and async classes.

The two classes (`_async` and its generated twin `_sync`) differ only in how
they wait for Redis. Everything else they need lives here: option checking
(`Retention`), the client's retry policy, translation of redis-py errors into
checkpointkit's typed errors, the small per-process state a saver keeps
(which threads it has announced to the threads index, which list versions it
holds intact), and the measurement methods each flavour bridges from the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from checkpointkit.checkpointers._listdelta import ListState
from checkpointkit.checkpointers._rows import BlobRow
from checkpointkit.checkpointers.base import BlobKey, StorageCore
from checkpointkit.checkpointers.redis._keys import blob_field
from checkpointkit.errors import (
    BackendUnavailableError,
    CheckpointKitError,
    ConfigurationError,
    CorruptDataError,
)

__all__ = [
    "AsyncExtras",
    "ClientState",
    "Retention",
    "SyncExtras",
    "async_retry",
    "client_error",
    "close_node_pools",
    "sync_retry",
    "translate",
]

# How many (thread, namespace) entries of per-process state a saver keeps.
_STATE_SIZE = 4096

# Server replies meaning "try again later": the server is loading, failing
# over, read-only (a demoted master), out of memory, or the cluster is down.
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "OOM", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN")


@dataclass(frozen=True)
class Retention:
    """How long threads live and how many checkpoints they keep.

    Attributes:
        ttl_ms: Milliseconds a thread's keys live after its last write (0: forever).
        read_ttl_ms: The TTL reads re-apply (``ttl_ms`` with ``refresh_on_read``, else 0).
        keep_last: Checkpoints kept per namespace (None: all).
    """

    ttl_ms: int = 0
    read_ttl_ms: int = 0
    keep_last: int | None = None

    @classmethod
    def of(
        cls, ttl: float | timedelta | None, refresh_on_read: bool, keep_last: int | None
    ) -> Retention:
        """Check the retention options of a saver.

        Raises:
            ConfigurationError: a value is of the wrong type or out of range.
        """
        if isinstance(ttl, timedelta):
            ttl = ttl.total_seconds()
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
            raise ConfigurationError(
                f"ttl must be seconds (int or float) or a timedelta, got {type(ttl).__name__}"
            )
        if ttl is not None and not ttl > 0:
            raise ConfigurationError(f"ttl must be positive, got {ttl!r}; pass None for no TTL")
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
        ):
            raise ConfigurationError(f"keep_last must be an int >= 1 or None, got {keep_last!r}")
        if refresh_on_read and ttl is None:
            raise ConfigurationError("refresh_on_read=True needs a ttl")
        ttl_ms = max(1, round(ttl * 1000)) if ttl is not None else 0
        return cls(ttl_ms, ttl_ms if refresh_on_read else 0, keep_last)

    def should_trim(self, count: int) -> bool:
        """Tell whether a namespace holding `count` checkpoints is due for trimming.

        Trimming reads the namespace's rows, so it runs in batches: once the
        namespace holds a tenth (at least one) more than ``keep_last``.
        """
        if self.keep_last is None:
            return False
        return count > self.keep_last + self.keep_last // 10


# Retries of a command whose connection failed: enough to ride out a restart or a
# failover (about 3 s at most). Safe, since every script is idempotent.
_RETRIES = 6
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 1.0


def sync_retry() -> Any:
    """The retry policy `RedisCheckpointer.from_conn_string` gives its client."""
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return Retry(ExponentialWithJitterBackoff(_BACKOFF_CAP, _BACKOFF_BASE), _RETRIES)


def async_retry() -> Any:
    """The retry policy `AsyncRedisCheckpointer.from_conn_string` gives its client."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    return Retry(ExponentialWithJitterBackoff(_BACKOFF_CAP, _BACKOFF_BASE), _RETRIES)


def close_node_pools(client: Any) -> None:
    """Disconnect the per-node pools of a sync ``RedisCluster`` made by ``from_url``.

    Its ``close()`` leaves them open (the node clients do not own their pools),
    so their sockets would only be closed, with a ResourceWarning, by the
    garbage collector. The asyncio cluster client closes its nodes itself.
    """
    get_nodes = getattr(client, "get_nodes", None)
    for node in get_nodes() if get_nodes is not None else ():
        pool = getattr(getattr(node, "redis_connection", None), "connection_pool", None)
        if pool is not None:
            pool.disconnect()


def client_error(client: object, *, decoding: bool = False) -> ConfigurationError:
    """Return the error for an unusable Redis client passed to a checkpointer."""
    if decoding:
        return ConfigurationError(
            "the Redis client decodes responses to str, but checkpoints are binary: "
            "create it with decode_responses=False"
        )
    return ConfigurationError(
        "client must be a redis-py Redis or RedisCluster client (of the flavour of the "
        f"checkpointer: redis.asyncio for the async one) or a ConnectionPool, "
        f"got {type(client).__name__}"
    )


def translate(exc: BaseException, action: str) -> CheckpointKitError:
    """Map a redis-py exception to the matching checkpointkit error.

    Args:
        exc: What redis-py raised.
        action: What was being done, for the message (e.g. "put").
    """
    from redis.exceptions import AuthenticationError, RedisClusterException, ResponseError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    message = str(exc) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return BackendUnavailableError(
            f"Redis refused the credentials during {action}: {message}; check the user "
            "and password in the URL (redis://user:password@host:port/db)"
        )
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, RedisClusterException)):
        return BackendUnavailableError(
            f"Redis is unreachable during {action}: {message}; check the server, or retry "
            "(every checkpointkit operation is safe to retry)"
        )
    if isinstance(exc, ResponseError) and message.upper().startswith(_UNAVAILABLE_REPLIES):
        return BackendUnavailableError(f"Redis refused {action}: {message}; retry later")
    if isinstance(exc, ResponseError) and (
        "user_script" in message or message.upper().startswith("WRONGTYPE")
    ):
        return CorruptDataError(
            f"stored data could not be read during {action}: {message}; a key under the "
            "checkpointer's prefix holds something it did not write"
        )
    return BackendUnavailableError(f"Redis failed {action}: {message}")


class ClientState:
    """What a saver remembers between calls, bounded and thread-safe.

    * Announced threads: on a cluster, the saver adds a thread to the threads
      index before its first write to it (so a crash after the write cannot
      leave the thread unlisted), once per process. On a single node the
      put's own script indexes the thread.
    * Intact lists: for each (thread, namespace, channel), a payload-less copy
      of the blob row of the list version the storage core caches, and its
      blob field, so a read can tell the server not to send that version's
      delta chain.
    """

    def __init__(self, size: int = _STATE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._announced: OrderedDict[str, None] = OrderedDict()
        # (thread, namespace) -> channel -> (blob field, stub)
        self._lists: OrderedDict[tuple[str, str], dict[str, tuple[str, BlobRow]]] = OrderedDict()

    def announced(self, thread_id: str) -> bool:
        with self._lock:
            if thread_id in self._announced:
                self._announced.move_to_end(thread_id)
                return True
            return False

    def mark_announced(self, thread_id: str) -> None:
        with self._lock:
            self._announced[thread_id] = None
            while len(self._announced) > self._size:
                self._announced.popitem(last=False)

    def remember(
        self,
        core: StorageCore,
        thread_id: str,
        ns: str,
        lists: Mapping[str, ListState],
        blobs: Mapping[BlobKey, BlobRow],
    ) -> None:
        """Record list versions now in the core's cache (after a put or a read)."""
        core.remember(thread_id, ns, lists)
        if not lists:
            return
        with self._lock:
            entry = self._lists.setdefault((thread_id, ns), {})
            self._lists.move_to_end((thread_id, ns))
            for channel, state in lists.items():
                blob = blobs.get((channel, state.version))
                held = entry.get(channel)
                if blob is None or (held is not None and blob is held[1]):
                    continue  # a read served from the stub held: nothing new
                field = blob_field(ns, channel, state.version)
                entry[channel] = (field, replace(blob, payload=None, ops=None))
            while len(self._lists) > self._size:
                self._lists.popitem(last=False)

    def intact(
        self, core: StorageCore, thread_id: str, ns: str
    ) -> dict[str, tuple[BlobRow, ListState]]:
        """Return blob field -> (stub, list) of the list versions the core holds intact."""
        with self._lock:
            stubs = list(self._lists.get((thread_id, ns), {}).values())
        out = {}
        for field, stub in stubs:
            state = core.cached_list(thread_id, ns, stub)
            if state is not None:
                out[field] = (stub, state)
        return out

    def forget(self, thread_ids: Iterable[str]) -> None:
        doomed = set(thread_ids)
        with self._lock:
            for key in [k for k in self._lists if k[0] in doomed]:
                del self._lists[key]


class AsyncExtras:
    """Sync twins of the async saver's measurement methods (run on its loop)."""

    def storage_bytes(self, thread_id: str | None = None) -> int:
        """Return the bytes stored for one thread (or all), as the memory saver counts them."""
        return self._wait(self.astorage_bytes(thread_id))  # type: ignore[attr-defined,no-any-return]

    def memory_usage(self, thread_id: str) -> int:
        """Return the bytes Redis uses for a thread's keys (``MEMORY USAGE``, summed)."""
        return self._wait(self.amemory_usage(thread_id))  # type: ignore[attr-defined,no-any-return]


class SyncExtras:
    """Async twins of the sync saver's measurement methods (run in a worker thread)."""

    async def astorage_bytes(self, thread_id: str | None = None) -> int:
        return await asyncio.to_thread(self.storage_bytes, thread_id)  # type: ignore[attr-defined,no-any-return]

    async def amemory_usage(self, thread_id: str) -> int:
        return await asyncio.to_thread(self.memory_usage, thread_id)  # type: ignore[attr-defined,no-any-return]
