# One short tool path: `make run`, `make test`, `make lint`, `make bench`.
# Every target creates .venv and installs what it needs when missing, so a fresh clone
# needs nothing but Python 3.10+.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hokusai server

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk not installed: serving.py and api.py use their httpx load generator"
	@set -e; for script in bench/registration.py bench/lookup.py bench/webhooks.py bench/serving.py bench/api.py bench/index.py; do \
		echo "== $$script"; $(BIN)/python $$script; \
	done

clean:
	rm -rf $(VENV) .hokusai .mypy_cache .ruff_cache .pytest_cache
