# One-command entry points; each sets up what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck check clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: set up, then run the main job on the embedded default (./data)
run: $(STAMP)
	$(BIN)/acf db upgrade --data-dir ./data
	$(BIN)/acf db current --data-dir ./data

## test: set up, then lint, type-check and run the whole test suite
test: $(STAMP) lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## bench: set up, then run the benchmark (acf beside a naive baseline and LangGraph)
bench: $(STAMP)
	$(BIN)/acf bench --json benchmarks/results.json
