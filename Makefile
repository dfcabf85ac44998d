# Two commands matter: `make demo` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test lint install install-test bench ui dashboard screenshots api worker up clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	@# everything but the tests: training, API + worker, dashboard (a bot host needs only '.[serve]')
	$(PIP) install -q -e '.[all]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[all,test]'
	@# Browser tests use Debian's chromium (never a downloaded browser).
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }
	touch $@

install: $(VENV)/.installed  ## create the virtual environment and install the package

install-test: $(VENV)/.installed-test  ## install what the tests need

demo: install  ## train a small model on the bundled real candles (embedded SQLite store)
	$(PY) -m backend.ml_engine.training_orchestrator --demo

test: install-test  ## run the whole test suite
	$(PY) -m pytest -q

lint: install-test  ## ruff (lint, format check) and mypy --strict on backend/ml_engine
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: install-test  ## run every benchmark and regenerate docs/benchmarks.md
	$(PY) bench/run_all.py

ui: install  ## MLflow UI on :5000 over the configured store
	$(PY) start_mlflow_ui.py

API_HOST ?= 127.0.0.1
API_PORT ?= 8000

api: install  ## REST API on :8000 (OpenAPI at /docs); state changes need ML_API_TOKEN
	$(PY) -m uvicorn backend.api.main:app --host $(API_HOST) --port $(API_PORT)

worker: install  ## job worker: queued jobs, each in its own process (ML_WORKER_SLOTS at once)
	$(PY) -m backend.services.worker

up: install  ## API, worker, scheduler and dashboard at once (Procfile, honcho); Ctrl-C stops them all
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" API_HOST=$(API_HOST) API_PORT=$(API_PORT) $(VENV)/bin/honcho start -f Procfile

dashboard: install  ## Russian dashboard (Streamlit) on :8501 over the configured store
	$(PY) -m backend.dashboard --port 8501

screenshots: install-test  ## retake docs/screenshots/*.png (headless Debian chromium, local PostgreSQL)
	DASHBOARD_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/test_dashboard_e2e.py

clean:  ## remove local runs, outputs and caches (not the venv)
	rm -rf mlruns outputs data_cache .pytest_cache
