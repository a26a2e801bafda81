# The two commands a newcomer runs: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .lockstep-demo

.PHONY: demo test lint typecheck unit integration bench system-deps clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { bash scripts/system-deps.sh venv && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	@$(BIN)/pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/lockstep version >/dev/null
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	@$(BIN)/pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@touch $@

demo: $(VENV)/.installed
	@LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep run examples/demo/workflow.yaml -p cases=3 --no-watch
	@echo
	@echo "Look again:  LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep runs list"
	@echo "             LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep runs logs <run id>"
	@echo "Serve it:    LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep server"

system-deps:
	@bash scripts/system-deps.sh test

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

test: system-deps $(VENV)/.dev-installed lint typecheck
	# a process per core, each test file kept whole in one (its fixtures are per file or session)
	$(BIN)/pytest -q -n auto --dist loadfile --durations=20

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q tests/unit

bench: $(VENV)/.installed
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/registry_scan.py
	$(BIN)/python bench/container_step.py
	$(BIN)/python bench/artifact_throughput.py
	$(BIN)/python bench/fan_out.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
