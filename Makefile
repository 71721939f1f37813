# Single entry point for developers and CI. Every target builds the virtual
# environment it needs, so each works on a fresh clone with python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint typecheck check generate check-generated clean bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m checkpointkit.demo

test: setup
	$(PY) tools/ensure_servers.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check src tests tools benchmarks
	$(PY) -m ruff format --check src tests tools benchmarks

typecheck: setup
	$(PY) -m mypy

check: lint typecheck test

bench: setup
	$(PY) -m benchmarks

bench-quick: setup
	$(PY) -m benchmarks --quick

generate: setup
	$(PY) tools/async_to_sync.py

check-generated: setup
	$(PY) tools/async_to_sync.py --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
