# One-command entry points; each sets up what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test lint typecheck check clean bench browser

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: set up, then serve the demo on the embedded default (./data): http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/acf serve --data-dir ./data

## browser: Debian's Chromium for the browser tests (installed once, if missing)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: could not install chromium: the browser tests will skip (fail in CI)"; }

## test: set up, then lint, type-check and run the whole test suite
test: $(STAMP) browser lint typecheck
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

## bench-distributed: acf distributed (1 API + 2 workers, local PostgreSQL) beside embedded acf and LangGraph (AsyncPostgresSaver)
.PHONY: bench-distributed
bench-distributed: $(STAMP)
	$(BIN)/python -m acf.bench.distributed --json benchmarks/results-distributed.json
