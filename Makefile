# Quick start:  make demo   (default experiment on embedded data, CPU is fine)
#               make test   (unit tests + tiny end-to-end runs of both runners)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# the demo's experiments: CyCADA, GAM, the calibrator and I2IAdapt on mnist5k -> mnistm, feature-map regression
# on its paired photocopy shift; `make demo EXPERIMENT=name` runs one experiment alone
EXPERIMENT ?= mnist5k_mnistm mnistm_photocopy
REPORTS := $(foreach e,$(EXPERIMENT),reports/$(e).csv)

.PHONY: install install-test dag demo test lint plan record share pull clean-outputs

# The package alone for running it (make demo, make plan, ...); the test tools on top for make test and make lint
# (moto, boto3, the SSH/S3 DVC remotes, ruff, the Slurm plugin: about 30 s of a fresh install that the demo skips).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

dag: install  ## regenerate dvc.yaml from params.yaml
	python -m pipeline_lib.dag

demo: install  ## run the default experiments and build the HTML report
	python -m pipeline_lib.dag --check
	snakemake $(REPORTS) --cores $(CORES) --quiet rules
	snakemake --cores 1 --report reports/report.html $(REPORTS)
	@echo
	@echo "report tables: $(REPORTS)"
	@echo "HTML report:  reports/report.html"
	@echo "with DVC:     make record, then dvc metrics show / dvc plots show / dvc exp run -S ... (see docs/workflow.md)"

test: install-test
	python -m pytest

# what a report costs before running it: jobs per rule, GPU- and CPU-hours, disk and free disk (docs/gta_cityscapes.md)
TARGET ?= reports/gta_cityscapes.csv
PLAN_ARGS ?=
plan: install  ## e.g. make plan TARGET=reports/gta_cityscapes.csv PLAN_ARGS="--profile paper --seeds 0"
	python -m pipeline_lib.plan $(TARGET) $(PLAN_ARGS)

lint: install-test  ## ruff with the project's rules (pyproject.toml); snakemake --lint is checked by tests/test_lint.py
	ruff check .

# the reports of dvc.yaml's experiments (a shell substitution, run where a recipe uses it)
DVC_REPORTS = $$(python -c "from pipeline_lib.config import load_params; from pipeline_lib import paths; print(' '.join(str(paths.report_csv(e)) for e in load_params().dvc_experiments))")

# A Snakemake run is recorded only when it is complete and current (snakemake -n plans nothing); dvc commit
# relinks the outputs from DVC's cache, so their timestamps are then put back in DAG order (snakemake --touch),
# or Snakemake would want to rerun everything.
record: install  ## record the last run's artifacts in dvc.lock (and DVC's cache) and stage dvc.lock
	@reports="$(DVC_REPORTS)"; \
	if [ "$$(dvc status --json)" = "{}" ]; then echo "dvc.lock already records the outputs"; \
	elif snakemake -n $$reports 2>&1 | grep -q "Nothing to be done"; then \
	  dvc commit --force --quiet && snakemake $$reports --cores 1 --touch --forceall --quiet rules; \
	else echo "error: the last run is incomplete or out of date (snakemake -n plans jobs for $$reports):" \
	  "finish it first (make demo, or snakemake --cores 2 <report>), then make record"; exit 1; fi
	git add dvc.lock
	@echo "dvc.lock is staged: commit it with git; dvc exp run and dvc metrics diff start from the committed run"

share: record  ## record the last run's artifacts in dvc.lock and push them to the DVC remote
	dvc push
	@echo "artifacts pushed; dvc.lock is staged: commit and push it with git so teammates can pull"

pull: install  ## fetch the team's artifacts, check them, bring Snakemake's view in line
	dvc pull
	@if [ "$$(dvc status --json)" != "{}" ]; then dvc status; \
	  echo "error: dvc status is not clean after pull: the pulled artifacts and dvc.lock disagree"; exit 1; fi
	snakemake --cores 1 --touch --forceall $(DVC_REPORTS)
	@echo "artifacts pulled; snakemake -n plans no jobs for them"
