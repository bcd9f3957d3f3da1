# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(wildcard protos/hotspot/v1/*.proto)

.PHONY: run test lint proto bench load clean

# Two distributions: the client (client/, with the core and the stubs) and the server (.), which
# depends on it. constraints.txt holds the tested versions of what both ask for by range.
$(STAMP): pyproject.toml client/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ./client -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hotspot-server $(ARGS)

test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BIN)/buf lint

# Regenerates the committed modules under protos/ (tests/unit/test_generated_code.py fails when they are stale).
proto: $(STAMP)
	$(BIN)/python protos/generate.py

# Section (g) runs the end-to-end processes of tests/e2e, the fake Optic Odds among them (never
# installed: imported from tests/fakes, as the tests do).
bench: $(STAMP)
	PYTHONPATH=tests/fakes:. $(BIN)/python -m bench.run

# The standard load set at a tenfold time scale (a 6 s window; 1,000 fixtures at 50 per 6 s are
# the full budget's 8,333 permits/s), report and plots in docs/load/.
load: $(STAMP)
	$(BIN)/hotspot load --start-server --window 6 --seconds 30 --fixtures 1000 --out docs/load

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
