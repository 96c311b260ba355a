# The two commands: `make run` and `make test`. Everything else is set-up they call.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench venv speedups
.DEFAULT_GOAL := run

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime

# masking/_restore.c, built in place (a no-op when up to date; without a C compiler, the Python path).
speedups: $(VENV)/.runtime
	$(PY) scripts/build_speedups.py

run: $(VENV)/.runtime speedups
	$(PY) scripts/run.py

test: $(VENV)/.dev speedups
	scripts/install-system-packages.sh redis-server chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(VENV)/.dev speedups
	for b in bench/*.py; do $(PY) $$b || exit 1; done
