# MCP bridge + release-qualification suite. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
REDIS ?= auto
XDIST ?= 2
MODE ?= quick
RUN_ID := $(shell date -u +%Y%m%dT%H%M%SZ)
EVIDENCE_DIR ?= var/qualification/$(RUN_ID)
BENCH_PROFILE ?=
TARGET ?= reference
TARGET_ARGS ?=
QUAL := $(PY) -m pytest qualification -p no:cacheprovider --redis=$(REDIS) \
	--qualification-mode=$(MODE) --target=$(TARGET) $(TARGET_ARGS) -o junit_family=xunit1

.PHONY: help install test test-unit test-e2e qualify qualify-binary qualify-container \
	qualify-deployed celery-worker api benchmark benchmark-celery scaling power release-report release-report-draft \
	container-engine lint clean

help:  ## list every target
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install the bridge, suite and tools

test: $(VENV)/.installed  ## unit tests, then the qualification suite (Celery eager, restarts, faults…)
	$(PY) -m pytest tests -p no:cacheprovider -q
	$(MAKE) --no-print-directory qualify

test-unit: $(VENV)/.installed  ## the bridge's and the tools' own tests only
	$(PY) -m pytest tests -p no:cacheprovider -q

qualify: $(VENV)/.installed  ## qualification suite: parallel pass and serial pass, both always run; fails if either failed (REDIS=auto|binary|container|redis://…; TARGET=reference|package.module:factory)
	@rc=0; \
	$(QUAL) --evidence-dir=$(EVIDENCE_DIR) -n $(XDIST) -m "not serial" -q \
		--junitxml=$(EVIDENCE_DIR)/junit-parallel.xml || rc=1; \
	$(QUAL) --evidence-dir=$(EVIDENCE_DIR) -m serial -q \
		--junitxml=$(EVIDENCE_DIR)/junit-serial.xml || rc=1; \
	echo "evidence: $(EVIDENCE_DIR)"; exit $$rc

qualify-deployed: $(VENV)/.installed  ## qualify a running bridge you did not start: BASE_URL=… TOKEN=… [ADMIN_TOKEN=…]; non-destructive checks only
	@test -n "$(BASE_URL)" -a -n "$(TOKEN)" || { echo "make qualify-deployed: set BASE_URL and TOKEN" >&2; exit 2; }
	$(MAKE) --no-print-directory qualify TARGET=deployed XDIST=0 \
		TARGET_ARGS='--base-url=$(BASE_URL) --token=$(TOKEN) $(if $(ADMIN_TOKEN),--admin-token=$(ADMIN_TOKEN))'

test-e2e: qualify  ## end-to-end: the qualification suite against real Redis and workers

qualify-binary:  ## the suite with a local redis-server binary
	$(MAKE) --no-print-directory qualify REDIS=binary

qualify-container: container-engine  ## the suite with Redis from testcontainers (podman here)
	$(MAKE) --no-print-directory qualify REDIS=container

container-engine:  ## podman as an offline Docker-compatible engine (Debian, root); no-op where Docker answers
	scripts/container-engine.sh

celery-worker: $(VENV)/.installed  ## a Celery worker on the current environment (WORKER_ARGS="-n w1@%h …")
	$(PY) -m mcp_bridge.worker $(WORKER_ARGS)

api: $(VENV)/.installed  ## the API on :8000
	$(VENV)/bin/uvicorn mcp_bridge.app:create_app --factory --host 0.0.0.0 --port 8000

benchmark: $(VENV)/.installed  ## smoke benchmark, inline backend (BENCH_PROFILE=1 to profile)
	$(PY) -m mcp_bridge.benchmarking --scenario smoke --iterations 5 --concurrency 4 \
		--job-backend inline --output-dir var/benchmarks --label inline \
		$(if $(BENCH_PROFILE),--profile --profile-top 25)

benchmark-celery: $(VENV)/.installed  ## the checklist's Celery inline-worker benchmark (3 iterations)
	$(PY) -m mcp_bridge.benchmarking --scenario smoke --iterations 3 --concurrency 4 \
		--job-backend celery --celery-inline-worker --celery-inline-worker-concurrency 4 \
		--output-dir var/benchmarks --label celery-inline

scaling: $(VENV)/.installed  ## the 1 → 4 worker scaling qualification alone (MODE=release: 10 rounds of 200 jobs)
	$(QUAL) --evidence-dir=$(EVIDENCE_DIR) -m scaling -q

power: $(VENV)/.installed  ## seed every fault of qualification/power/catalogue.toml into a copy of the bridge; each must turn the suite red
	$(PY) -m qualification.power --out $(EVIDENCE_DIR)/power.json -- --redis=$(REDIS)

release-report: $(VENV)/.installed  ## qualify, then build reports/<version>/ (EVIDENCE_DIR=… to reuse a run)
	@if [ ! -f "$(EVIDENCE_DIR)/run.json" ]; then $(MAKE) --no-print-directory qualify \
		EVIDENCE_DIR=$(EVIDENCE_DIR) || true; fi
	$(PY) -m reports --evidence-dir $(EVIDENCE_DIR)

# The draft reads EVIDENCE_DIR when given, else the newest complete run under var/qualification/,
# else (a fresh clone) it runs the qualification first, as release-report does.
release-report-draft: $(VENV)/.installed  ## as release-report, but never fails the GA gate (newest run, or a fresh one)
	@dir="$(if $(filter file,$(origin EVIDENCE_DIR)),,$(EVIDENCE_DIR))"; \
	if [ -z "$$dir" ]; then \
		for run in $$(ls -1dt var/qualification/*/ 2>/dev/null); do \
			if [ -f "$$run/run.json" ]; then dir="$${run%/}"; break; fi; \
		done; \
	fi; \
	if [ -z "$$dir" ]; then \
		dir="$(EVIDENCE_DIR)"; \
		$(MAKE) --no-print-directory qualify EVIDENCE_DIR="$$dir" || true; \
	fi; \
	echo "evidence: $$dir"; \
	$(PY) -m reports --evidence-dir "$$dir" --draft

lint: $(VENV)/.installed  ## ruff
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:  ## remove build and run outputs (keeps .venv)
	rm -rf var build dist .pytest_cache .ruff_cache
