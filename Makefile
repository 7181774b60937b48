# radio24 — `make run` runs the station, `make test` runs the whole suite.
# Both set up whatever is missing first (venv, Python packages, livekit-server, Debian packages).

SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LIVEKIT_VERSION := v1.13.5
TOOLS := .tools/bin
APT_PACKAGES := espeak-ng open-jtalk-mecab-naist-jdic chromium fonts-ipafont-gothic
WEB_SOURCES := $(wildcard web/*.html web/*.css web/*.svg web/*.webmanifest web/build.mjs \
  web/tsconfig.json web/src/*.ts web/src/*/*.ts web/codegen/*.py web/codegen/*.mjs)
# What shapes the schemas the pages' types are generated from: the API's routes and models, the
# contract's events and room names.
SCHEMA_SOURCES := $(shell find contract api -name '*.py' 2>/dev/null)

.PHONY: setup run test test-unit test-web lint migrate check-prompts bench soak clean-run locks audit

setup: $(VENV)/.installed livekit-server apt-packages web/dist/.built

# Two locks, both with hashes: requirements.lock (runtime: what the images install) and
# requirements-dev.lock (runtime + the dev extra, same versions: what the venv installs).
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@echo "==> Python environment ($(VENV)) from requirements-dev.lock"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	@$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements-dev.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

web/node_modules/.installed: web/package.json web/codegen/package.json web/package-lock.json
	@echo "==> Web dependencies (npm ci) from web/package-lock.json"
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The pages' types come from the contract (web/src/generated, not committed): the API's OpenAPI
# schema, the events' JSON schema and the room names, dumped by the project's Python, then turned
# into TypeScript; the build type-checks against them, so a field renamed on one side only fails.
web/dist/.built: $(VENV)/.installed web/node_modules/.installed $(WEB_SOURCES) $(SCHEMA_SOURCES)
	@echo "==> The pages' types from the contract (web/src/generated)"
	@$(BIN)/python web/codegen/schema.py web/src/generated
	@cd web && npm run --silent generate
	@echo "==> Building the listener page and studio (web/dist)"
	@cd web && npm run --silent build
	@touch $@

.PHONY: livekit-server
livekit-server:
	@if command -v livekit-server >/dev/null || test -x $(TOOLS)/livekit-server; then :; else \
	  echo "==> Building livekit-server $(LIVEKIT_VERSION) with Go into $(TOOLS) (first time only, ~3 min)"; \
	  mkdir -p .tools/gobin && \
	  GOBIN=$$PWD/.tools/gobin go install -v github.com/livekit/livekit-server/cmd/server@$(LIVEKIT_VERSION) 2>&1 \
	    | awk '{ n++; if (n % 25 == 0) { printf "    ... %d packages compiled (%s)\n", n, $$0; fflush() } }' && \
	  mkdir -p $(TOOLS) && mv .tools/gobin/server $(TOOLS)/livekit-server && \
	  echo "    built $$($(TOOLS)/livekit-server --version)"; \
	fi

.PHONY: apt-packages
apt-packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> Installing Debian packages: $$missing (offline voice, browser tests)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing >/dev/null && echo "    done"; \
	fi

run: setup
	@$(BIN)/radio24 run

test: setup
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory audit
	@echo "==> the pages' unit tests (node --test)"
	@cd web && npm test --silent
	@$(BIN)/python -m pytest

# Scanners, failing on high severity. A scanner that cannot reach its advisory data says
# SKIPPED out loud (never a silent pass): pip-audit asks PyPI, npm audit the npm registry.
audit: $(VENV)/.installed web/node_modules/.installed
	@echo "==> bandit (high severity) on core/ contract/ programme/ agent/ api/ db/ radio24/"
	@$(BIN)/bandit -q -r core contract programme agent api db radio24 --severity-level high --confidence-level medium
	@echo "==> pip-audit on requirements.lock (the runtime lock the images install)"
	@out=$$($(BIN)/pip-audit -r requirements.lock --require-hashes --disable-pip --no-deps \
	  -s pypi --progress-spinner off 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "$$out"; exit $$rc; fi; \
	missed=$$(echo "$$out" | grep -c "could not be audited"); \
	if [ "$$missed" -gt 0 ]; then \
	  echo "    SKIPPED, NOT A PASS: PyPI gave no vulnerability data for $$missed packages here"; \
	else echo "    no known vulnerabilities"; fi
	@echo "==> npm audit (high severity) on web/"
	@out=$$(cd web && npm audit --audit-level=high 2>&1); rc=$$?; \
	if echo "$$out" | grep -qE "audit endpoint returned an error|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN"; then \
	  echo "    SKIPPED, NOT A PASS: the npm registry's advisory service is unreachable here"; \
	elif [ $$rc -ne 0 ]; then echo "$$out"; exit $$rc; \
	else echo "    no high-severity advisories"; fi

test-unit: $(VENV)/.installed
	@$(BIN)/python -m pytest -m 'not integration and not browser'

# The pages' pure parts (connection states, captions, push-to-talk, events, words) under Node.
test-web: web/dist/.built
	@cd web && npm test --silent

# The house keeps its shape: style, formatting, the floors and no import cycle
# (import-linter, pyproject.toml), and types (mypy over the project's packages).
lint: $(VENV)/.installed
	@echo "==> ruff (lint, format), import contracts, mypy"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/mypy

migrate: $(VENV)/.installed
	@$(BIN)/radio24 migrate

check-prompts: $(VENV)/.installed
	@$(BIN)/radio24 prompts check $(or $(DIR),$(RADIO_PROMPTS_DIR),prompts)

BENCHES := offline_voice api_load ptt_latency memory_recall attributes

bench: setup
	@for b in $(BENCHES); do echo "==> bench/$$b.py"; $(BIN)/python -m bench.$$b || exit 1; done

# Regenerate both locks after a change to pyproject.toml's dependency lists.
locks: $(VENV)/.installed
	@$(BIN)/uv pip compile --quiet pyproject.toml --generate-hashes --python $(BIN)/python \
	  -o requirements.lock
	@$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --generate-hashes \
	  --python $(BIN)/python -c requirements.lock -o requirements-dev.lock

# A broadcast day at 72x (20 min): RSS, fds, silences, running order, posts, model usage.
soak: setup
	@$(BIN)/python -m bench.day $(SOAK_ARGS)

clean-run:
	rm -rf .run
