# Cloud Agent RCA — set-up, demo, tests and benchmarks on a fresh machine.
# `make demo` and `make test` create the virtual environment and install everything first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup services demo test test-fast reliability bench peers-env model lint deploy constraints clean

# Within constraints.txt: the same versions on every machine (`make constraints` moves them on).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -c constraints.txt
	# PyRCA's incident generator (models/generators/pyrca.py) needs only numpy; its declared dependencies are old
	# pins (scikit-learn<1.2, javabridge) that would break this environment, hence --no-deps.
	$(BIN)/pip install --quiet --no-deps sfr-pyrca==1.0.1
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its test tools

services:  ## start the local PostgreSQL, MariaDB and Redis if they are down; prepare the shell sandbox
	scripts/ensure-services.sh

demo: setup services  ## a simulated incident, diagnosed end to end, report printed
	$(BIN)/cloud-agent demo

test: setup services  ## set up the servers and the sandbox, then run the whole test suite (the 15 slowest named)
	$(BIN)/pytest --durations=15

test-fast: setup  ## unit tests only (no servers)
	$(BIN)/pytest tests/unit -m "not integration"

reliability: setup  ## the reliability and security suite on its own
	$(BIN)/pytest -m reliability

model: setup  ## retrain the model shipped in models/shipped/ on every generator (minutes; commit the result)
	$(BIN)/cloud-agent model train --out models/shipped

bench: setup  ## benchmarks; each prints its numbers
	$(BIN)/python bench/executors.py

PEERS_VENV := bench/.peers-venv
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/peers/requirements.txt
	python3.11 -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r bench/peers/requirements.txt
	# Their declared dependencies are old pins the methods we run do not import (see requirements.txt).
	$(PEERS_VENV)/bin/pip install --quiet --no-deps RCAEval==1.8.1 sfr-pyrca==1.0.1
	$(PEERS_VENV)/bin/python bench/peers/run_peers.py --check
	touch $(PEERS_STAMP)

peers-env: $(PEERS_STAMP)  ## the statistical peers (RCAEval BARO/N-sigma, PyRCA HT) in their own venv, bench/.peers-venv

deploy: setup  ## against PREFECT_API_URL: create the work pools, then `prefect deploy --all`
	@test -n "$$PREFECT_API_URL" || (echo "set PREFECT_API_URL to your Prefect server's API" && exit 2)
	for pool in rca-control $$(ls deployments/*/environment.yaml | xargs -n1 dirname | xargs -n1 basename | sed 's/^/rca-/'); do \
	  $(BIN)/prefect work-pool inspect $$pool >/dev/null 2>&1 || $(BIN)/prefect work-pool create $$pool --type cloud-agent; \
	done
	CLOUD_AGENT_HOME=$(CURDIR) $(BIN)/prefect --no-prompt deploy --all

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy executors models flows gateway

constraints:  ## re-resolve pyproject.toml's ranges from PyPI in a scratch venv and rewrite constraints.txt
	rm -rf .constraints-venv && $(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .constraints-venv/bin/pip freeze --exclude-editable | grep -v '^#'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .constraints-venv

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .mypy_cache .ruff_cache
