# One-command entry points; each sets up what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test lint typecheck check clean bench browser promtool upgrade-deps

LOCK := requirements.lock
UV_VERSION := 0.13.9
PIP_VERSION := 26.3

# The virtualenv gets exactly the versions in $(LOCK), the ones CI last tested; pyproject.toml
# keeps the ranges library users install against. `make upgrade-deps` refreshes the lock.
$(STAMP): pyproject.toml $(LOCK)
	@echo "setting up $(VENV): acf and its tools at the versions pinned in $(LOCK)"
	@echo "(the first time this downloads about 150 packages and takes a few minutes)"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --requirement $(LOCK)
	$(BIN)/pip install --quiet --no-deps --editable .
	$(BIN)/pip check
	touch $(STAMP)
	@echo "$(VENV) is ready"

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

## promtool: Prometheus's rule checker from Debian's package, into $(BIN) (once, if missing)
promtool: $(STAMP)
	@[ -x $(BIN)/promtool ] || command -v promtool >/dev/null 2>&1 || { \
	  echo "extracting promtool from Debian's prometheus package for the deploy/ tests"; \
	  tmp=$$(mktemp -d) && ( cd $$tmp && apt-get download -qq prometheus >/dev/null 2>&1 \
	    && dpkg-deb -x prometheus_*.deb root ) && cp $$tmp/root/usr/bin/promtool $(BIN)/promtool; \
	  rm -rf $$tmp; [ -x $(BIN)/promtool ] \
	  || echo "warning: no promtool: tests/deploy checks the rules' structure only"; }

## test: set up, then lint, type-check and run the whole test suite: one pytest-xdist worker
## per CPU (at most 4), then the tests marked `solo` (Locust, chaos), which load the machine
## by design, alone (exit status 5, "no test selected", is no failure when PYTEST_ARGS narrows)
test: $(STAMP) browser promtool lint typecheck
	$(BIN)/pytest -n auto --maxprocesses 4 --dist worksteal -m "not solo" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/pytest -m solo $(PYTEST_ARGS) || [ $$? -eq 5 ]

## lint: ruff, and the import directions of DESIGN §14 (pyproject.toml's [tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## upgrade-deps: resolve the newest versions pyproject.toml allows into $(LOCK), reinstall, run the suite
upgrade-deps: $(STAMP)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal --upgrade --quiet --output-file $(LOCK)
	rm -rf $(VENV)
	$(MAKE) test

## bench: set up, then run the benchmark (acf beside a naive baseline and LangGraph)
bench: $(STAMP)
	$(BIN)/acf bench --json benchmarks/results.json

## bench-distributed: acf distributed (1 API + 2 workers, local PostgreSQL) beside embedded acf and LangGraph (AsyncPostgresSaver)
.PHONY: bench-distributed
bench-distributed: $(STAMP)
	$(BIN)/python -m acf.bench.distributed --json benchmarks/results-distributed.json

## bench-llm: acf's added latency in front of a streaming model (kind: llm, drafts) beside the openai SDK, on a fake model
.PHONY: bench-llm
bench-llm: $(STAMP)
	$(BIN)/python -m acf.bench.llm --json benchmarks/results-llm.json

## replay-sweep: replay the policy grid of benchmarks/replay-grid.yaml over the fit half of a chat log (issue 23)
REPLAY_LOG ?= ../shared/data/chat-timing/slack-elmlang-general-2019.xml
.PHONY: replay-sweep
replay-sweep: $(STAMP)
	$(BIN)/python -m acf.replay.sweep $(REPLAY_LOG) --grid benchmarks/replay-grid.yaml --half fit --jobs 2 --json benchmarks/replay-sweep.json

## load: 50 web-chat customers (Locust) for 10 min against acf serve, a fake model and a fake agent service
.PHONY: load
load: $(STAMP)
	$(BIN)/python -m acf.bench.load --users 50 --duration 600 --json benchmarks/results-load.json
