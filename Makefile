# jobtask: `make run` starts the worker and API, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every dependency of make run and make test, each version pinned and hashed (make lock writes it).
LOCK := requirements/test.txt

.PHONY: run lint test audit lock bench schema clean

# The lock first, hashes checked, then the project itself without resolving anything more; its
# build backend (setuptools) is in the lock too.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
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

# pip-audit over the locks against PyPI's advisories (.ci/audit.py): a known vulnerability fails,
# an advisory database out of reach is a warning.
audit: $(STAMP)
	$(PY) .ci/audit.py

# The hashed locks from pyproject.toml: requirements/service.txt (the image: the runtime and Flower)
# and requirements/test.txt (make run and make test: the embedded servers and the test tools too).
# pip-tools runs in a venv of its own; run this after changing a dependency, and commit both files.
LOCK_VENV := .venv-lock
COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || \
		{ $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet 'pip-tools>=7.4,<8'; }
	$(COMPILE) --extra flower -o requirements/service.txt pyproject.toml
	$(COMPILE) --extra embedded --extra test -o requirements/test.txt pyproject.toml

# One table, a row per stream (bench/main.py). BENCH_ARGS="--scale 0.05" for a quick look,
# BENCH_ARGS="--soak 1000000" for the memory soak instead; --help lists the rest.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

schema: $(STAMP)
	$(PY) -m worker.contract.schema

clean:
	rm -rf $(VENV) $(LOCK_VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
