# jobtask: `make run` starts the worker and API, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run lint test bench schema clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,test]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m worker run

# ruff (pyproject.toml [tool.ruff]) and mypy ([tool.mypy]); a few seconds. `ruff check --fix .` mends
# most of ruff's findings by itself.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Lint first, so a finding fails CI (.ci/run calls make test); LINT= skips it while iterating.
LINT ?= lint
test: $(STAMP) $(LINT)
	$(PY) -m pytest $(PYTEST_ARGS)

# One table, a row per stream (bench/main.py). BENCH_ARGS="--scale 0.05" for a quick look,
# BENCH_ARGS="--soak 1000000" for the memory soak instead; --help lists the rest.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(PY) -m worker.contract.schema

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
