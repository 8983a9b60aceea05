# Every target installs what it needs: a fresh machine needs only python3 (3.11) and make.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
CODE := $(wildcard src tests bench)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: install demo serve test lint typecheck pytest bench bench-quick clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.synced  ## create the virtualenv from the lock file

demo: install  ## the reference sources and mlgraph on the embedded default (SQLite in ./.mlgraph)
	$(BIN)/mlgraph demo

serve: demo

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: install
	$(BIN)/mypy $(CODE)

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest  ## lint, type-check and run the test suite

bench: install  ## full benchmarks (slow); results go in docs/BENCHMARKS.md
	$(BIN)/python bench/store.py
	$(BIN)/python bench/ingest.py --size 50
	$(BIN)/python bench/enrich.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/percolate.py
	$(BIN)/python bench/follow.py

bench-quick: install  ## every benchmark in quick mode (about a minute each)
	$(BIN)/python bench/store.py --quick
	$(BIN)/python bench/ingest.py --quick
	$(BIN)/python bench/enrich.py --quick
	$(BIN)/python bench/search.py --quick
	$(BIN)/python bench/api.py --quick
	$(BIN)/python bench/percolate.py --quick
	$(BIN)/python bench/follow.py --quick

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
