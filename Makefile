# seldflow: the two entry points are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed
# Exact versions for the ranges of pyproject.toml (torch's CPU/CUDA build); a change reinstalls.
CONSTRAINTS := constraints.txt

.PHONY: demo demo-stereo demo-foa demo-s5 demo-s5-guided demo-doanet s5-table pseldnets-table test bench lint format report dag clean help

help:
	@echo "make demo   - create $(VENV), install, run every system's demo on its embedded synthetic dataset"
	@echo "make demo-stereo, demo-foa, demo-s5, demo-s5-guided, demo-doanet - one system's demo: DCASE2025 stereo"
	@echo "             SELD; FOA SELD (DCASE2021-style, mACCDOA); DCASE2025 Task 4 S5 (tagger + ResUNetK, CA-SDRi); its"
	@echo "             second place's SED-guided full system; DOAnet + Hnet (class-agnostic DOA tracking, dMOT vs MSE)"
	@echo "make s5-table - the S5 ablation table of the second-place system (guided separators): results/s5/summary.csv"
	@echo "make pseldnets-table - PSELDNets at embedded scale: 43-class synthetic pretraining, then fine-tuning vs from"
	@echo "             scratch vs AdapterBit on a small 13-class FOA set: results/experiments/pseldnets_demo.csv"
	@echo "make test   - create $(VENV), install, run the test suite"
	@echo "make bench  - run the workflow, then write results/benchmark/benchmark.{md,csv}"
	@echo "make lint   - ruff, snakefmt --check, snakemake --lint"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

demo: demo-stereo demo-foa demo-s5 demo-s5-guided demo-doanet

# Each system's demo is the workflow with the system's config layered over config/config.yaml (shared sound bank and
# rooms are built once); the report and the scores of its experiment close it.
define run_demo
	$(BIN)/snakemake --cores $(CORES) $(1)
	$(BIN)/snakemake --cores $(CORES) $(1) --report $(2)
	@cat results/$$($(BIN)/python -c "import sys, yaml; c = {}; [c.update(yaml.safe_load(open(f))) for f in sys.argv[1:]]; print(c['experiment'])" config/config.yaml $(3))/metrics.json; echo
endef

demo-stereo: $(STAMP)
	$(call run_demo,,results/report.html,)

demo-foa: $(STAMP)
	$(call run_demo,--configfile config/foa_demo.yaml,results/foa_demo/report.html,config/foa_demo.yaml)

# The S5 branch has its own target rules (its experiments under results/s5/). Its small networks train and infer one
# thread per job, side by side (two threads per tiny job mostly wait on each other).
S5_ONE_THREAD := --set-threads s5_tagger=1 s5_sed=1 s5_separator=1 s5_infer=1

demo-s5: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(S5_ONE_THREAD) -- s5_all
	$(BIN)/snakemake --cores $(CORES) s5_all --report results/s5/report.html
	@cat results/s5/$$($(BIN)/python -c "import yaml; print(yaml.safe_load(open('config/config.yaml'))['s5']['experiment'])")/metrics.json; echo

# CA-SDRi (dB) and label accuracy of each s5.run_experiments run in the three label columns.
define S5_LISTED_SCORES
import json, yaml
from seldflow.s5.experiments import LABEL_SOURCES, listed_runs
for run in listed_runs(yaml.safe_load(open("config/config.yaml"))["s5"]):
    metrics = json.load(open(f"results/s5/{run.name}/metrics.json"))
    columns = (f"{c} labels {metrics[c]['CA-SDRi']:.2f} dB (accuracy {metrics[c]['label_accuracy']:.3f})" for c in LABEL_SOURCES)
    print(f"{run.name}: CA-SDRi", " | ".join(columns))
endef
export S5_LISTED_SCORES

# The second-place system's full guided separator (s5.run_experiments), on the S5 branch's data and detectors.
demo-s5-guided: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(S5_ONE_THREAD) -- s5_experiments
	@$(BIN)/python -c "$$S5_LISTED_SCORES"

# The DOAnet branch has its own target rule (its experiments under results/doanet/); its trainings take one thread
# each, so the dMOT and MSE runs share the cores instead of queueing.
demo-doanet: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --set-threads doanet_train=1 doanet_infer=1 -- doanet_all
	$(BIN)/snakemake --cores $(CORES) doanet_all --report results/doanet/report.html
	@cat results/doanet/summary.csv

# The S5 ablation table (s5.summary_experiments): every guided variant and the baseline at their budget, each scored
# with the baseline tagger, the fine-tuned SED and oracle labels, ranked in one CSV.
s5-table: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(S5_ONE_THREAD) -- results/s5/summary.csv
	@cat results/s5/summary.csv

# PSELDNets' chain at embedded scale (config/pseldnets_demo.yaml): the pretraining subsets are rendered and the network
# pretrained, then fine-tuned fully and with AdapterBit, beside training from scratch; the three ranked in one CSV.
pseldnets-table: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/pseldnets_demo.yaml -- results/experiments/pseldnets_demo.csv
	@cat results/experiments/pseldnets_demo.csv

# One pytest worker per core (pytest-xdist), each test file on one worker: a file's module fixtures (a trained
# network, the SLURM cluster) are built once, and tests/conftest.py gives each worker one torch thread.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(CORES) --dist loadfile

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
