# `make serve` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RANER_POOL_OFFLINE ?= 1

.PHONY: serve test lint train evaluate parity clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: the CPU wheel; an unpinned torch pulls gigabytes of CUDA packages.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/raner-pool demo

test: $(STAMP)
	$(BIN)/ruff check raner_pool tests training scripts
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check raner_pool tests training scripts
	$(BIN)/mypy

train: $(STAMP)
	$(BIN)/python training/train.py --out raner_pool/models/default

evaluate: $(STAMP)
	$(BIN)/python training/evaluate.py

parity: $(STAMP)
	$(BIN)/python scripts/parity.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
