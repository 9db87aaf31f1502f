# Two commands: `make demo` and `make test`. Both create .venv and install everything on first use.
PYTHON ?= python3
# pytest-xdist workers for `make test` (each file runs on one worker: tests/conftest.py)
TEST_WORKERS ?= 2
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv bench lint lab clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hardening needs Python 3.11+; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## demo: embedded Redis + demo service + ~1 min k6 load test with SLO gates + HTML reports
demo: $(STAMP)
	$(BIN)/hardening demo --profile $(or $(PROFILE),demo)

## test: the whole test suite (real k6, real Redis/Valkey, real papermill, real Chromium)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --nbval-lax tests notebooks $(PYTEST_ARGS)

## bench: print the benchmark figures (not a test)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_merge.py
	$(BIN)/python benchmarks/bench_sampler.py
	$(BIN)/python benchmarks/bench_reports.py
	$(BIN)/python benchmarks/bench_masking.py

lint: $(STAMP)
	$(BIN)/ruff check hardening tests benchmarks

## lab: JupyterLab on notebooks/ (installs the optional `lab` extra into .venv the first time)
lab: $(STAMP)
	@$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[dev,lab]'
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) reports/*.html reports/*.ipynb test-artifacts
