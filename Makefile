# Everything a fresh machine needs; `make demo` and `make test` are README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup system-deps demo test test-all lint format bench

$(BIN)/mlpipe-exporter: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

setup: $(BIN)/mlpipe-exporter

# Prometheus and Alertmanager from Debian, for the integration tests (needs root).
system-deps:
	@scripts/install-system-deps.sh

demo: setup
	$(BIN)/mlpipe-exporter demo --dir demo-data

test: setup system-deps
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m fuzz

test-all: setup system-deps
	$(BIN)/pytest -q -m "slow or fuzz or not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python bench/ingest.py
