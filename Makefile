# ketaclinic: `make demo` runs the demo clinic, `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
KC := $(VENV)/bin/ketaclinic
export KETACLINIC_DATA_DIR ?= $(CURDIR)/var
# PostgreSQL for the second test run; CI=true makes it required.
KETACLINIC_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ketaclinic
PYTEST_WORKERS ?= 2

.PHONY: demo test install install-dev chromium lint typecheck test-sqlite test-postgres test-e2e bench clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip uv

install: $(VENV)/bin/python
	$(VENV)/bin/uv pip install -q -p $(PY) -e . || $(VENV)/bin/pip install -q -e .

install-dev: $(VENV)/bin/python
	$(VENV)/bin/uv pip install -q -p $(PY) -e '.[dev]' || $(VENV)/bin/pip install -q -e '.[dev]'

# The demo runs over plain HTTP on localhost, so its cookies cannot be Secure-only.
demo: install
	$(KC) migrate --no-input -v0
	KETACLINIC_COOKIE_SECURE=false $(KC) demo

chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src/ketaclinic/clinical tests/clinical

typecheck: install-dev
	$(VENV)/bin/mypy src/ketaclinic/clinical

# SQLite whatever the environment says: .ci/run exports the PostgreSQL URL for the next run.
test-sqlite: install-dev
	env -u KETACLINIC_TEST_DATABASE_URL $(VENV)/bin/pytest -q -m "not e2e" -n $(PYTEST_WORKERS)

test-postgres: install-dev
	@if $(PY) bench/pg_available.py "$(KETACLINIC_TEST_DATABASE_URL)"; then \
	  KETACLINIC_TEST_DATABASE_URL="$(KETACLINIC_TEST_DATABASE_URL)" $(VENV)/bin/pytest -q -m "not e2e" -n $(PYTEST_WORKERS); \
	elif [ "$$CI" = "true" ]; then \
	  echo "PostgreSQL is required when CI=true but $(KETACLINIC_TEST_DATABASE_URL) does not answer."; exit 1; \
	else \
	  echo "SKIPPED: the PostgreSQL test run (no server answers at $(KETACLINIC_TEST_DATABASE_URL); set KETACLINIC_TEST_DATABASE_URL)."; \
	fi

test-e2e: install-dev chromium
	$(VENV)/bin/pytest -q -m e2e

test: lint typecheck test-sqlite test-postgres test-e2e

# Load test on PostgreSQL with 100,000 seeded patients (bench/README.md); needs wrk.
# Only the runtime install is needed, so an existing venv is used as it is.
bench: $(VENV)/bin/python
	@test -x $(KC) || $(MAKE) install
	@command -v wrk >/dev/null 2>&1 || { echo "Installing Debian's wrk for the benchmark..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
