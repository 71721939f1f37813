"""checkpointkit: LangGraph checkpoint savers with linear-size history.

Savers for memory, SQLite, PostgreSQL and Redis, each a subclass of
LangGraph's `BaseCheckpointSaver`, built on one storage core that stores a
list channel (such as ``messages``) as deltas instead of re-storing it whole
at every step.
"""

from __future__ import annotations

from checkpointkit import errors
from checkpointkit.checkpointers import MemoryCheckpointer, ThreadInfo

__all__ = ["MemoryCheckpointer", "ThreadInfo", "errors"]
__version__ = "0.1.0"
