"""Real-server test harness: throwaway PostgreSQL / Redis servers and fixtures on them.

``servers`` starts and stops the servers (no pytest, no drivers); ``isolation``
gives each test its own schema, database or key prefix on a shared server;
``plugin`` turns both into fixtures. Enable the fixtures with
``pytest_plugins = ["tests.harness.plugin"]`` in ``tests/conftest.py``.
"""
