# kube-etl: `make demo` runs the demo warehouse on a local control plane; `make test` runs every test.
# Both install what they need first: Debian packages, a virtualenv in .venv, and the control plane
# binaries (built from the Go module proxy into ~/.cache/kube-etl on the first run).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE_DIR ?= .state
INSTALLED := $(VENV)/.installed

.PHONY: all demo down test unit integration lint typecheck control-plane clean

all: test

$(INSTALLED): pyproject.toml hack/install-system-packages.sh
	hack/install-system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

control-plane:
	hack/build-control-plane.sh >/dev/null

demo: $(INSTALLED) control-plane
	$(BIN)/python examples/demo.py --state-dir $(STATE_DIR)

down: $(INSTALLED)
	$(BIN)/python examples/demo.py --state-dir $(STATE_DIR) --down

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(INSTALLED)
	$(BIN)/mypy etl_runtime operator/etl_operator localcluster/etl_localcluster examples/warehouse

unit: $(INSTALLED)
	$(BIN)/pytest -m 'not integration'

integration: $(INSTALLED) control-plane
	$(BIN)/pytest -m integration

test: lint typecheck control-plane
	$(BIN)/pytest

clean: down
	rm -rf $(VENV) $(STATE_DIR)
