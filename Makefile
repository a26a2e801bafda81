# The two commands a newcomer runs: `make demo` and `make test` (see README.md).
# Both install exactly the locked dependency set (requirements/*.txt, made by `make lock`).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= .lockstep-demo
#: the peers `make bench` measures lockstep beside (Prefect), in a venv of their own
PEERS_VENV ?= .venv-peers
#: the installer; pinned so that a fresh machine resolves the lock as this one did
UV_VERSION := 0.13.9
UV := $(BIN)/uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes -q

.PHONY: demo test lint typecheck unit bench system-deps lock clean

$(UV):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { bash scripts/system-deps.sh venv && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --disable-pip-version-check "uv==$(UV_VERSION)" 2>&1 | grep -v "^WARNING: Location" || true

# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set, every CLI call
# would otherwise compile ~1,400 modules again (4.5 s instead of 2 s for `runs list`).
$(VENV)/.installed: $(UV) requirements/lock.txt pyproject.toml
	@$(UV) pip install -q --python $(BIN)/python --compile-bytecode --require-hashes -r requirements/lock.txt
	@$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	@$(BIN)/python -m compileall -q src/lockstep >/dev/null
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements/dev-lock.txt
	@$(UV) pip install -q --python $(BIN)/python --compile-bytecode --require-hashes -r requirements/dev-lock.txt
	@touch $@

# Prefect's pins (pydantic, typer, httpx, sqlalchemy, fastapi, ...) would move lockstep's tested
# set, so the peers live in their own venv, installed from their own hashed lock.
$(PEERS_VENV)/.installed: $(UV) requirements/bench-peers.txt
	@$(PYTHON) -m venv --without-pip $(PEERS_VENV)
	@$(UV) pip install -q --python $(PEERS_VENV)/bin/python --compile-bytecode --require-hashes -r requirements/bench-peers.txt
	@touch $@

demo: $(VENV)/.installed
	@LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep run examples/demo/workflow.yaml -p cases=3 --no-watch
	@echo
	@echo "Look again:  LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep runs list"
	@echo "             LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep runs logs <run id>"
	@echo "Serve it:    LOCKSTEP_HOME=$(DEMO_HOME) $(BIN)/lockstep server"

# Refresh the lock after changing a dependency in pyproject.toml (needs the venv's uv).
lock: $(UV)
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) -o requirements/lock.txt
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements/dev-lock.txt
	$(UV) pip compile requirements/bench-peers.in $(LOCK_FLAGS) -o requirements/bench-peers.txt

system-deps:
	@bash scripts/system-deps.sh test

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# Two test processes per core (most tests wait on an engine, a timer or a child process, so two
# per core keep the cores busy), each test file kept whole in one (its fixtures are per file or
# session), handed out longest first (tests/conftest.py LONGEST_FIRST); the suite must leave
# the tree as it found it (nothing generated in `git status`).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))
test: system-deps $(VENV)/.dev-installed lint typecheck
	@git status --porcelain --untracked-files=all > $(VENV)/.tree-before 2>/dev/null || true
	@$(BIN)/python -m compileall -q src/lockstep >/dev/null  # sources edited since the install
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20
	@bash scripts/tree-unchanged.sh $(VENV)/.tree-before

unit: $(VENV)/.dev-installed
	$(BIN)/pytest -q tests/unit

# the dev set: the UI bench drives Debian's chromium through Playwright; engine_overhead.py runs
# bench/peers/ with the peers' venv's python
bench: $(VENV)/.dev-installed $(PEERS_VENV)/.installed
	$(BIN)/python bench/engine_overhead.py --peer-python $(PEERS_VENV)/bin/python
	$(BIN)/python bench/step_phases.py
	$(BIN)/python bench/registry_scan.py
	$(BIN)/python bench/container_step.py
	$(BIN)/python bench/artifact_throughput.py
	$(BIN)/python bench/fan_out.py
	$(BIN)/python bench/cli_reads.py
	$(BIN)/python bench/ui_first_paint.py
	$(BIN)/python bench/pipeline_throughput.py
	$(BIN)/python bench/deploy_latency.py

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
