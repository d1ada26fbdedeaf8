# Both entry points create (or reuse) the virtual environment in .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck contracts pytest bench clean

# setup.py builds the optional C accelerators (src/winaio/**/*.c) in place: a changed source
# reinstalls, which rebuilds them.
$(STAMP): pyproject.toml setup.py $(wildcard src/winaio/*/*.c src/winaio/*/*/*.c)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## The main job: the RPC demo server (endpoint mapper, mgmt, rpcecho on 127.0.0.1; Ctrl-C stops it).
## `python -m winaio demo` walks through the Win32 asynchronous model instead.
run: $(STAMP)
	$(PY) -m winaio serve

## The whole test suite: lint, format check, strict typing, layering contracts, pytest.
test: lint typecheck contracts pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
