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

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The fault suite (tests/faults, ~5 minutes of outages) has its own target, run by CI.
test: lint
	ZOOMADMIN_VAR_DIR=$(CURDIR)/var/test $(BIN)/python -m pytest -m "not faults" $(PYTEST_ARGS)

test-faults: $(STAMP)
	ZOOMADMIN_VAR_DIR=$(CURDIR)/var/test-faults $(BIN)/python -m pytest -m faults tests/faults $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The load generator (locust) is the `load` extra: only this target needs it.
LOAD_STAMP := $(VENV)/.installed-load
$(LOAD_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,load]"
	touch $(LOAD_STAMP)

load: $(LOAD_STAMP)
	$(BIN)/python -m bench load $(LOAD_ARGS)

clean:
	rm -rf var .pytest_cache .ruff_cache
