# NetWatch — the commands people and CI run. `make demo` and `make test` are the two to know.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help setup demo test lint fmt bench soak lab-up lab-down clean

help:
	@echo "make demo   - build the lab network and run NetWatch against it (Ctrl-C stops and cleans up)"
	@echo "make test   - install what the tests need and run the whole suite (lint included)"
	@echo "make lint   - ruff, ruff format --check, mypy --strict, import contracts"
	@echo "make bench  - benchmarks against the tools users would pick instead"
	@echo "make soak   - an hour of random faults on the lab with PostgreSQL (root)"

setup:
	@scripts/bootstrap.sh

demo: setup
	@scripts/demo.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The suite runs in parallel workers, a whole test file per worker (each lab module has a lab
# index of its own): most lab tests wait on rounds, so four workers on two cores cut the wall time
# without starving them. TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 4
test: setup lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: setup
	@scripts/bench.sh

lab-up: setup
	$(VENV)/bin/netwatch lab up

lab-down: setup
	$(VENV)/bin/netwatch lab down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info

# An hour of random faults on the lab with PostgreSQL (root; not part of `make test`):
# make soak SOAK_ARGS="--duration 600" for a shorter one. Ends with a RESULT soak line.
soak: setup
	$(PY) scripts/soak.py $(SOAK_ARGS)
