# kube-etl: `make demo` runs the demo warehouse on a local control plane; `make test` runs every test.
# Both install what they need first: Debian packages, a virtualenv in .venv, and the control plane
# binaries (built from the Go module proxy into ~/.cache/kube-etl on the first run).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE_DIR ?= .state
INSTALLED := $(VENV)/.installed
# checkov (the chart and Dockerfile scanner) has many dependencies of its own, so it gets a virtualenv
# apart from the project's.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_INSTALLED := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: all demo down test unit integration lint typecheck control-plane checkov chart-crds e2e-kind clean

all: test

$(INSTALLED): pyproject.toml hack/install-system-packages.sh
	hack/install-system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(CHECKOV_INSTALLED):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

control-plane:
	hack/build-control-plane.sh >/dev/null

checkov: $(CHECKOV_INSTALLED)

# The chart installs the ETLTask CRD from its own crds/ folder; crds/ at the root is the one source.
chart-crds:
	cp crds/etltasks.etl.kube-etl.io.yaml charts/kube-etl/crds/

# Needs Docker and kind: builds the images, installs the chart into a new kind cluster, runs the
# integration suite against it and deletes the cluster.
e2e-kind: $(INSTALLED) control-plane
	hack/e2e-kind.sh

demo: $(INSTALLED) control-plane
	$(BIN)/python examples/demo.py --state-dir $(STATE_DIR)

down: $(INSTALLED)
	$(BIN)/python examples/demo.py --state-dir $(STATE_DIR) --down

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(INSTALLED)
	$(BIN)/mypy etl_runtime operator/etl_operator localcluster/etl_localcluster examples/warehouse examples/seed_api benchmarks

unit: $(INSTALLED) checkov
	$(BIN)/pytest -m 'not integration'

integration: $(INSTALLED) control-plane
	$(BIN)/pytest -m integration

test: lint typecheck control-plane checkov
	$(BIN)/pytest

clean: down
	rm -rf $(VENV) $(CHECKOV_VENV) $(STATE_DIR)

# Benchmarks on a fresh local cluster at full size (an estimated hour on 2 cores; docs/benchmarks.md has
# the figures). `make bench BENCH_ARGS='--tasks 20 --repeats 1'` is a quick run.
BENCH_ARGS ?=
.PHONY: bench
bench: $(INSTALLED) control-plane
	$(BIN)/python -m benchmarks --output $(STATE_DIR)/benchmarks.json $(BENCH_ARGS)
