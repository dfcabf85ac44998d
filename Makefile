# Two commands matter: `make demo` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test install install-test bench ui clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed  ## create the virtual environment and install the package

install-test: $(VENV)/.installed-test  ## install what the tests need

demo: install  ## train a small model on the bundled real candles (embedded SQLite store)
	$(PY) -m backend.ml_engine.training_orchestrator --demo

test: install-test  ## run the whole test suite
	$(PY) -m pytest -q

bench: install-test  ## run the benchmarks and write their reports under bench/results
	$(PY) bench/bench_windowing.py
	$(PY) bench/bench_tracking.py

ui: install  ## MLflow UI on :5000 over the configured store
	$(PY) start_mlflow_ui.py

clean:  ## remove local runs, outputs and caches (not the venv)
	rm -rf mlruns outputs data_cache .pytest_cache
