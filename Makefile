# Fresh clone:  make run   (demo at http://127.0.0.1:5000)
#               make test  (SQLite; set TEST_DATABASE_URL for PostgreSQL, or use make test-pg)

PYTHON      ?= python3.11
VENV        ?= .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
FLASK       := $(BIN)/flask --app finance_app
HOST        ?= 127.0.0.1
PORT        ?= 5000
PYTEST_ARGS ?=
# Test processes (pytest-xdist); on PostgreSQL each gets a database of its own.
TEST_WORKERS ?= 2

# make test-pg: a fresh database on this server, dropped afterwards.
PG_SERVER   ?= postgresql://postgres@127.0.0.1:5432
TEST_PG_DB  ?= finance_test_$(shell date +%Y%m%d%H%M%S)_$(shell echo $$$$)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-pg setup install translations db demo browser-deps clean help

help:
	@echo "make run           set up, migrate, load the demo data and serve on http://$(HOST):$(PORT)"
	@echo "make test          set up and run the test suite (TEST_DATABASE_URL honoured)"
	@echo "make test-pg       run the suite on a fresh PostgreSQL database ($(PG_SERVER))"
	@echo "make browser-deps  install Debian's chromium and CJK fonts for the browser tests"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(STAMP)

translations: $(STAMP)
	@if ls finance_app/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
		$(BIN)/pybabel compile -d finance_app/translations; \
	else \
		echo "No translation catalogues to compile."; \
	fi

setup: install translations

db: setup
	$(FLASK) db upgrade

demo: db
	$(FLASK) demo

run: demo
	$(FLASK) run --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-pg: setup
	@set -e; \
	db="$(TEST_PG_DB)"; \
	psql "$(PG_SERVER)/postgres" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $$db" -c "CREATE DATABASE $$db"; \
	trap 'psql "$(PG_SERVER)/postgres" -q -c "DROP DATABASE IF EXISTS $$db WITH (FORCE)" >/dev/null' EXIT; \
	echo "PostgreSQL test database: $$db"; \
	TEST_DATABASE_URL="$(PG_SERVER)/$$db" $(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

browser-deps:
	@if [ -x /usr/bin/chromium ]; then \
		echo "/usr/bin/chromium is installed."; \
	else \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache
	find finance_app tests migrations -name __pycache__ -type d -prune -exec rm -rf {} +
