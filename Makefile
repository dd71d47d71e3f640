# econtract — the two set-up commands are `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.8
# Debian packages the app needs: WeasyPrint's Pango (templates to PDF), HarfBuzz's subsetter (without
# it WeasyPrint falls back to fontTools and CJK documents render 10-30x slower), a CJK font.
RUN_SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-wqy-microhei
# And the test suite: a PostgreSQL server, Chromium for the browser tests, poppler's
# pdfsig/pdftotext/pdffonts, NSS tools for pdfsig's trust store.
TEST_SYSTEM_PACKAGES := $(RUN_SYSTEM_PACKAGES) postgresql-15 chromium poppler-utils libnss3-tools
PYTEST_ARGS ?= -n 2

.PHONY: run test bench lint install install-dev system-deps system-deps-run clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/pip install -q uv==$(UV_VERSION)

# Both lock files carry hashes; uv refuses anything that does not match them.
$(VENV)/.runtime: requirements/runtime.lock pyproject.toml | $(UV)
	$(UV) pip install -q --python $(BIN)/python --require-hashes -r requirements/runtime.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

$(VENV)/.dev: requirements/dev.lock pyproject.toml | $(UV)
	$(UV) pip install -q --python $(BIN)/python --require-hashes -r requirements/dev.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

system-deps-run:
	@$(MAKE) --no-print-directory system-deps TEST_SYSTEM_PACKAGES="$(RUN_SYSTEM_PACKAGES)"

system-deps:
	@missing=""; for p in $(TEST_SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing system packages:$$missing — run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

run: system-deps-run install
	@$(BIN)/econtract init --if-missing
	$(BIN)/econtract serve

lint: install-dev
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy

test: system-deps install-dev lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install-dev
	@for b in bench/[!_]*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
