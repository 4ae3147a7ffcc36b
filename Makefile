# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs Pingura, runs `pingura serve` on :8080
#   make test   creates .venv, installs Pingura with test extras and the programs the tests
#               drive (Chromium, Borg: tests/install_tools.sh), runs the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8080
DATA_DIR ?= pingura-data
# The suite runs in this many processes, a test file each at a time (module fixtures stay
# whole): most of its time is waiting on real deadlines, which overlap. TEST_WORKERS=0: one.
TEST_WORKERS ?= 2

.PHONY: run test lint install install-test test-tools bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"

run: install
	$(BIN)/pingura serve --port $(PORT) --data-dir $(DATA_DIR)

test-tools:
	@bash tests/install_tools.sh

test: install-test test-tools
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BIN)/python
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
