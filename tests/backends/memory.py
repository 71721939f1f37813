"""The memory checkpointer for the contract suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

from checkpointkit import MemoryCheckpointer
from tests.contract.backends import SaverFactory, saver_options


@contextmanager
def memory(request: pytest.FixtureRequest) -> Iterator[BaseCheckpointSaver[Any]]:
    yield MemoryCheckpointer(**saver_options(request))


FACTORIES: dict[str, SaverFactory] = {"memory": memory}
