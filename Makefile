# The few commands a contributor needs. `make help` lists them.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: help install test lint format example

help:  ## List the targets
	@grep -E "^[a-z]+:.*## " $(MAKEFILE_LIST) | sed "s/:.*## /\t/"

install:  ## Create $(VENV) and install assay with the dev and example extras
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev,examples]'

test:  ## Run the test suite
	$(BIN)/pytest

lint:  ## Check style and formatting (no changes)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

format:  ## Format the code and apply safe lint fixes
	$(BIN)/ruff format src tests examples
	$(BIN)/ruff check --fix src tests examples

example:  ## Run every example end to end (examples/run_all.sh)
	ASSAY=$(BIN)/assay bash examples/run_all.sh

.PHONY: bench
bench:  ## Benchmarks against Curifactory and joblib; writes benchmarks/RESULTS.md (ARGS=--quick for the short run)
	$(BIN)/python -m benchmarks $(ARGS)
