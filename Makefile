# Sodate: `make run` starts it on http://127.0.0.1:8000; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/sodate migrate
	$(BIN)/sodate up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	scripts/ensure-browser-tools
	scripts/with-test-postgres $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/queue_throughput.py --jobs 20000 --workers 1 2
	scripts/with-test-postgres sh -c '$(BIN)/python bench/queue_throughput.py --jobs 20000 --workers 1 2 --database-url "$$SODATE_TEST_POSTGRES_URL"'
	$(BIN)/python bench/ingest.py --events 100000 --contacts 10000 --mode http http-accept-only inprocess
	scripts/with-test-postgres sh -c '$(BIN)/python bench/ingest.py --events 100000 --contacts 10000 --mode http http-accept-only inprocess --database-url "$$SODATE_TEST_POSTGRES_URL"'
	$(BIN)/python bench/identify_latency.py --rate 1000 --identify-rate 10 --duration 45
	scripts/with-test-postgres sh -c '$(BIN)/python bench/identify_latency.py --rate 1000 --identify-rate 10 --duration 45 --database-url "$$SODATE_TEST_POSTGRES_URL"'
	$(BIN)/python bench/csv_import.py --rows 100000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
	rm -rf tests/events/browser/node_modules tests/events/browser/dist
