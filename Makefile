# signalsmith: `make run` and `make test` are all a newcomer needs (Python 3.11+).
SHELL := /bin/bash
# The first Python >= 3.11 on PATH (shims that cannot run count as absent).
FOUND_PYTHON := $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTHON ?= $(FOUND_PYTHON)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench symbols clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "signalsmith needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUNTIME)

run: $(RUNTIME) ## Run signalsmith on embedded Redis with the demo posts (Ctrl-C stops)
	$(BIN)/signalsmith run --demo

test: $(DEV) ## Run the whole test suite
	$(BIN)/python -m pytest

lint: $(DEV) ## ruff and mypy (strict on src/)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

format: $(DEV) ## Format the code
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

bench: $(DEV) ## Run the benchmarks (prints JSON)
	$(BIN)/python bench/bench_lexicon.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_llm.py
	$(BIN)/python bench/bench_llm_cpu.py
	$(BIN)/python bench/bench_batching.py idle
	$(BIN)/python bench/bench_throughput.py
	$(BIN)/python bench/bench_tiers.py
	$(BIN)/python bench/bench_quality.py

symbols: $(DEV) ## Rebuild the shipped symbol list from ../shared/data
	$(BIN)/python scripts/build_symbols.py

clean: ## Remove the virtualenv, caches and the demo's state
	rm -rf $(VENV) .signalsmith .pytest_cache .mypy_cache .ruff_cache
