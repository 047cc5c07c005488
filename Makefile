# Cloud Agent RCA — set-up, demo, tests and benchmarks on a fresh machine.
# `make demo` and `make test` create the virtual environment and install everything first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup services demo test test-fast reliability bench lint deploy clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its test tools

services:  ## start the local PostgreSQL, MariaDB and Redis if they are down
	scripts/ensure-services.sh

demo: setup services  ## a simulated incident, diagnosed end to end, report printed
	$(BIN)/cloud-agent demo

test: setup  ## the whole test suite (needs PostgreSQL, MariaDB and Redis on localhost; see .ci/run)
	$(BIN)/pytest

test-fast: setup  ## unit tests only (no servers)
	$(BIN)/pytest -m "not integration and not slow"

reliability: setup  ## the reliability and security suite on its own
	$(BIN)/pytest -m reliability

bench: setup  ## benchmarks; each prints its numbers
	$(BIN)/python bench/executors.py

deploy: setup  ## against PREFECT_API_URL: create the work pools, then `prefect deploy --all`
	@test -n "$$PREFECT_API_URL" || (echo "set PREFECT_API_URL to your Prefect server's API" && exit 2)
	for pool in rca-control $$(ls deployments/*/environment.yaml | xargs -n1 dirname | xargs -n1 basename | sed 's/^/rca-/'); do \
	  $(BIN)/prefect work-pool inspect $$pool >/dev/null 2>&1 || $(BIN)/prefect work-pool create $$pool --type cloud-agent; \
	done
	CLOUD_AGENT_HOME=$(CURDIR) $(BIN)/prefect --no-prompt deploy --all

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy executors models flows gateway

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
