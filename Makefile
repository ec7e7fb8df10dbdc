# One verb per job. Every target sets itself up: a fresh clone needs only python3.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
STAMP := $(VENV)/.installed-stamp

.PHONY: install gen check-gen lint test test-fast run bench breaking clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# protoc-gen-es (TypeScript) comes from the example client's pinned package-lock.json;
# npm ci runs again only when the lock changed (the stamp is a copy of the lock).
TS_CLIENT := examples/clients/ts
TS_DEPS := $(TS_CLIENT)/node_modules/.lock-stamp

$(TS_DEPS): $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT) --ignore-scripts --no-audit --no-fund
	cp $< $@

# Python messages, gRPC stubs, mypy stubs, TypeScript messages and service descriptors,
# and Envoy's descriptor set, all from protos/.
gen: $(STAMP) $(TS_DEPS)
	rm -rf gen/python gen/ts
	buf generate
	buf build -o gen/descriptor.binpb

# Fails when `make gen` would change gen/ (generated code is committed, never hand-edited).
check-gen: $(STAMP) $(TS_DEPS)
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	buf generate -o $$tmp/out >/dev/null 2>&1 && mkdir -p $$tmp/gen && \
	mv $$tmp/out/gen/python $$tmp/gen/python && mv $$tmp/out/gen/ts $$tmp/gen/ts && \
	buf build -o $$tmp/gen/descriptor.binpb && \
	diff -r -x __pycache__ gen $$tmp/gen && echo "gen/ is up to date" || \
	{ echo "gen/ is stale: run 'make gen' and commit the result"; exit 1; }

lint: $(STAMP)
	ruff check .
	ruff format --check .
	mypy src bench
	python scripts/check_layers.py
	buf lint
	buf format --diff --exit-code

test: $(STAMP) lint check-gen
	pytest -q

test-fast: $(STAMP)
	pytest -q -x

run: $(STAMP)
	chatplane run

bench: $(STAMP)
	python -m bench

# Compare the contract with main: a breaking change shows up for review.
breaking: $(STAMP)
	buf breaking --against '.git#branch=main'

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
