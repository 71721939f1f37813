"""The checkpointers the contract suite runs against, gathered from `tests.backends`.

Every module of the `tests.backends` package contributes its ``FACTORIES``;
adding a backend is adding one module there. Every contract test then runs
against each factory, in both sync and async mode.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

SaverFactory = Callable[[pytest.FixtureRequest], AbstractContextManager[BaseCheckpointSaver[Any]]]


def _discover() -> dict[str, SaverFactory]:
    import tests.backends as package

    found: dict[str, SaverFactory] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found.update(getattr(module, "FACTORIES", {}))
    return found


def saver_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Return the constructor options a test asks for with ``@pytest.mark.saver_options(...)``."""
    marker = request.node.get_closest_marker("saver_options")
    return dict(marker.kwargs) if marker is not None else {}


BACKENDS: dict[str, SaverFactory] = _discover()
