"""The checkpointers the contract suite runs against.

Each entry is a name and a factory taking the pytest `request` and yielding a
fresh, isolated saver. A new backend adds one entry here (and its server
fixture in the harness); every contract test then runs against it in both
sync and async mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit import MemoryCheckpointer

SaverFactory = Callable[[pytest.FixtureRequest], AbstractContextManager[BaseCheckpointSaver[Any]]]


@contextmanager
def memory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    yield MemoryCheckpointer()


BACKENDS: dict[str, SaverFactory] = {
    "memory": memory,
}
