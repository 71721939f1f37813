"""The contract suite's backend fixtures (every backend x sync/async), for core tests."""

from tests.contract.conftest import api, backend, mode, saver

__all__ = ["api", "backend", "mode", "saver"]
