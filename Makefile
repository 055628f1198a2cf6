# One short tool path: `make run`, `make test`, `make lint`, `make bench`.
# Every target creates .venv and installs what it needs when missing, so a fresh clone
# needs nothing but Python 3.10+.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench install clean browser

# Installing prints pip's own progress (one line per package); the first install takes about
# a minute.
$(BIN)/python:
	@echo "== make: creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "== make: installing hokusai and its dependencies into $(VENV) (about a minute the first time)"
	$(BIN)/python -m pip install -e ".[dev]"
	@touch $(STAMP)
	@echo "== make: installed. To use the hokusai command: source $(VENV)/bin/activate (or run $(BIN)/hokusai)"

install: $(STAMP)

run: $(STAMP)
	@echo "== make: starting the registry API. In another shell: source $(VENV)/bin/activate (or use $(BIN)/hokusai)"
	$(BIN)/hokusai server

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The console's browser tests drive Debian's Chromium (tests/console/): installed here when it
# is missing and this user may (root with apt-get); otherwise those tests skip, saying why.
browser:
	@[ -x /usr/bin/chromium ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		echo "== make: installing Debian's chromium for the console's browser tests" && \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "chromium not installed: the console's browser tests will skip"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk not installed: serving.py, protocols.py and api.py use their httpx load generator"
	@set -e; for script in bench/registration.py bench/lookup.py bench/webhooks.py bench/serving.py bench/protocols.py bench/api.py bench/index.py bench/cli.py bench/console.py bench/stack.py bench/verification.py; do \
		echo "== $$script"; $(BIN)/python $$script; \
	done
	$(BIN)/python bench/summary.py

clean:
	rm -rf $(VENV) .hokusai .mypy_cache .ruff_cache .pytest_cache
