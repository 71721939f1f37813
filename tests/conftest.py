"""Test-suite configuration: the real-server harness is enabled for every test."""

pytest_plugins = ["tests.harness.plugin"]
