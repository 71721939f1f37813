"""Event-loop plumbing of the async Redis checkpointer (no sync twin).

A ``redis.asyncio`` connection belongs to the event loop that opened it. The
async checkpointer remembers its loop; a round trip made for a caller on
another running loop (another thread's ``asyncio.run``, say) runs on the
saver's loop and is awaited from the caller's (`forward`), instead of failing
inside redis-py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["forward", "running_loop"]

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """Return the running event loop, or None outside one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def forward(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on `loop` and wait for it from the calling loop."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
