# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt constraints.txt pyproject.toml | md5sum | cut -c1-12)

.PHONY: install demo airflow lint test test-slow constraints clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: install
	$(PY) scripts/demo.py

# The real Airflow UI on an embedded PostgreSQL, with both emulators (scripts/airflow_local.py --help).
airflow: install
	$(PY) scripts/airflow_local.py --emulators

# Static checks, configured in pyproject.toml: ruff (lint, and the format of every file) and mypy.
lint: install
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/mypy

test: install lint
	$(PY) -m pytest

# The slow groups: the browser test (Debian's chromium, a live Airflow), the CeleryExecutor deployment and
# the WDT limiter shared through this machine's PostgreSQL and Redis, and the docker-compose program's
# check of docker-compose.yaml. .ci/run installs and starts what they need.
test-slow: install
	$(PY) -m pytest -m "browser or deploy"

# Re-resolve the lock after changing requirements*.txt (needs the package registry).
constraints:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements-dev.txt
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock

clean:
	rm -rf .airflow .airflow-live .demo staging .pytest_cache .hypothesis .mypy_cache .ruff_cache
