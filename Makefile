# zoomadmin: `make demo` runs the dashboard, `make test` runs the tests. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint format test-faults bench load clean

help:
	@echo "make demo   - install, migrate, seed the sandbox and run the dashboard (Ctrl-C stops it)"
	@echo "make test   - lint and run the whole test suite (embedded profile unless DATABASE_URL/REDIS_URL)"
	@echo "make test-faults - the fault suite: kills workers, stops its own Redis and PostgreSQL, breaks Zoom (~5 min)"
	@echo "make bench  - benchmarks, printed side by side (PostgreSQL db 'bench', Redis db 8)"
	@echo "make load   - 50 simulated operators for 60 s against gunicorn (installs locust)"

# scripts/install is the install step everywhere: here (so CI), the Dockerfile and systemd hosts.
$(STAMP): pyproject.toml scripts/install
	PYTHON=$(PYTHON) VENV=$(VENV) EXTRAS=dev scripts/install
	touch $(STAMP)

install: $(STAMP)

# DEBUG is off unless set (production's default); the demo, the tests and the benchmarks are
# development, and say so. (The demo's own processes then run with DEBUG off, as in production.)
demo: $(STAMP)
	DEBUG=true $(BIN)/python manage.py demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The fault suite (tests/faults, ~5 minutes of outages) has its own target, run by CI.
# The production profile's test (tests/browser/test_production.py) needs PostgreSQL and Redis:
# without DATABASE_URL and REDIS_URL it is deselected, and this says so (CI runs it in the
# service profile, where it fails rather than skips if it cannot start).
ifeq ($(and $(DATABASE_URL),$(REDIS_URL)),)
TEST_MARKS := not faults and not production
else
TEST_MARKS := not faults
endif

# The single sign-on tests' OpenID provider (the npm package oidc-provider; Node.js 20+ and npm).
# tests/fixtures/oidc.py runs the same `npm ci` when a test needs it and this has not run.
OIDC_STAMP := tests/oidc/node_modules/.package-lock.json
$(OIDC_STAMP): tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error

test: lint $(OIDC_STAMP)
ifeq ($(and $(DATABASE_URL),$(REDIS_URL)),)
	@echo "== deselected: tests/browser/test_production.py (the production profile needs DATABASE_URL and REDIS_URL)"
endif
	DEBUG=true ZOOMADMIN_VAR_DIR=$(CURDIR)/var/test $(BIN)/python -m pytest -m "$(TEST_MARKS)" $(PYTEST_ARGS)

test-faults: $(STAMP)
	DEBUG=true ZOOMADMIN_VAR_DIR=$(CURDIR)/var/test-faults $(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)

# The benchmarks' gunicorn serves the static files collected here, as a deployment's does.
bench: $(STAMP)
	DEBUG=true $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DEBUG=true $(BIN)/python -m bench $(BENCH_ARGS)

# The load generator (locust) is the `load` extra: only this target needs it.
LOAD_STAMP := $(VENV)/.installed-load
$(LOAD_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,load]"
	touch $(LOAD_STAMP)

load: $(LOAD_STAMP)
	DEBUG=true $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DEBUG=true $(BIN)/python -m bench load $(LOAD_ARGS)

clean:
	rm -rf var staticfiles .pytest_cache .ruff_cache tests/oidc/node_modules
