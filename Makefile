# The two commands of the README: `make example` and `make test`. Both set up .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# The "Selective run" view: its front-end sources and the browser test's driver (npm packages).
UI := airflow_provider_mlpipe/plugins/ui
BROWSER_TEST := tests/integration/browser
# The example runs on the embedded default: SQLite in .airflow-home, artifacts in a local folder.
EXAMPLE_ENV := AIRFLOW_HOME=$(CURDIR)/.airflow-home AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__MLPIPE__ARTIFACT_STORE=$(CURDIR)/.airflow-home/mlpipe/artifacts

.PHONY: setup example test lint bench clean ui ui-test browser-driver

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[examples,dev,celery]"
	touch $@

example: setup
	$(EXAMPLE_ENV) $(BIN)/mlpipe validate dags/abalone.pipeline.yaml dags/abalone_python.py
	$(EXAMPLE_ENV) $(BIN)/mlpipe run abalone
	@echo "--- selective re-run: Train and Evaluate with MaxDepth=8, Preprocess reused from the run above"
	$(EXAMPLE_ENV) $(BIN)/mlpipe run abalone --select Train,Evaluate --param MaxDepth=8
	$(EXAMPLE_ENV) $(BIN)/mlpipe models list abalone

test: setup browser-driver
	$(BIN)/pytest

# The browser test's driver (npm's playwright-core; it drives Debian's chromium, never a download).
# Without node the browser test skips and says why.
browser-driver: $(BROWSER_TEST)/node_modules/.installed

$(BROWSER_TEST)/node_modules/.installed: $(BROWSER_TEST)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(BROWSER_TEST) && npm ci --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: the browser test will be skipped"; fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/pip install -q -e ".[examples,dev,celery,bench]"
	$(BIN)/python bench/bench_factory.py
	$(BIN)/python bench/bench_step_overhead.py
	$(BIN)/python bench/bench_selective.py
	$(BIN)/python bench/bench_data_passing.py
	$(BIN)/python bench/bench_cache.py
	$(BIN)/python bench/bench_parallel.py

clean:
	rm -rf .airflow-home .pytest_cache .mypy_cache .ruff_cache

# Rebuild the view's bundle from its sources (the built bundle is committed: installing needs no Node).
ui:
	cd $(UI) && npm ci --no-audit --no-fund && npm run build

# The view's formatting, types and unit tests, and a check that the committed bundle is what its sources build.
ui-test: ui
	cd $(UI) && npm run lint && npm test
	@git diff --quiet -- $(UI)/dist || { git diff --stat -- $(UI)/dist; \
		echo "$(UI)/dist differs from a fresh build of its sources: commit the rebuilt bundle"; exit 1; }
