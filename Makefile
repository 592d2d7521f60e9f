# Everything a fresh machine needs; `make demo` and `make test` are README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup system-deps demo test test-all lint format bench bench-peers

# The compiled modules (setup.py) are rebuilt when their sources change.
$(BIN)/mlpipe-exporter: pyproject.toml setup.py exporter/sources/_feature_json.c exporter/state/_bins.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark,fast]'
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

# The peers bench/ingest.py compares with (left out of its table when absent): Debian's
# mtail, and whylogs in a venv of its own (never the project's).
bench-peers:
	command -v mtail >/dev/null || apt-get install -y mtail
	test -x bench/.venv-whylogs/bin/python || $(PYTHON) -m venv bench/.venv-whylogs
	bench/.venv-whylogs/bin/pip install -q whylogs 'pandas<3' pyarrow
