"""Checkpointers: one module per backend over the shared storage core (`base`)."""

from __future__ import annotations

from checkpointkit.checkpointers.base import ThreadInfo
from checkpointkit.checkpointers.memory import MemoryCheckpointer

__all__ = ["MemoryCheckpointer", "ThreadInfo"]
