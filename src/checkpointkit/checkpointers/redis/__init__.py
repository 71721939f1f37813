"""Redis checkpointers: `RedisCheckpointer` (sync) and `AsyncRedisCheckpointer` (async).

Both store threads with core Redis commands and Lua scripts only (no
RedisJSON, no RediSearch), on a single server or a Redis Cluster. They need
the ``redis`` extra: ``pip install 'checkpointkit[redis]'``.
"""

from __future__ import annotations

try:
    import redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    from checkpointkit.errors import MissingDependencyError

    raise MissingDependencyError.for_extra("RedisCheckpointer", "redis", "redis") from exc

from checkpointkit.checkpointers.redis._async import AsyncRedisCheckpointer
from checkpointkit.checkpointers.redis._keys import DEFAULT_PREFIX
from checkpointkit.checkpointers.redis._sync import RedisCheckpointer

__all__ = ["DEFAULT_PREFIX", "AsyncRedisCheckpointer", "RedisCheckpointer"]
