# seldflow: the two entry points are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed
# Exact versions for the ranges of pyproject.toml (torch's CPU/CUDA build); a change reinstalls.
CONSTRAINTS := constraints.txt

.PHONY: demo test bench lint format report dag clean help

help:
	@echo "make demo   - create $(VENV), install, run the whole workflow on the embedded synthetic dataset"
	@echo "make test   - create $(VENV), install, run the test suite"
	@echo "make bench  - run the workflow, then write results/benchmark/benchmark.{md,csv}"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@cat results/$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('config/config.yaml'))['experiment'])")/metrics.json; echo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The workflow (finished outputs reused), then the benchmark report, always re-measured.
bench: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --forcerun benchmark -- benchmark
	@cat results/benchmark/benchmark.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules/

dag: $(STAMP)
	$(BIN)/snakemake --rulegraph mermaid-js

clean:
	rm -rf results .snakemake
