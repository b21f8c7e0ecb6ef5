"""Text generation behind one small interface, so llama.cpp in-process can later be swapped for an
OpenAI-compatible server without touching the answer logic."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator, Protocol

from rag.core.errors import GenerationError
from rag.core.sections import SamplingParams
from rag.models.gpu import (gpu_offload_supported, llama_backend, layers_offloaded, model_layers,
                            nvidia_gpu)
from rag.models.gpu import resolve_gpu_layers, usable_cpus

log = logging.getLogger(__name__)


class Generator(Protocol):
    name: str
    context_window: int

    def generate(self, messages: list[dict[str, str]], params: SamplingParams,
                 stop: list[str] | None = None) -> Iterator[str]:
        """Yield the reply to a chat, piece by piece, ending early at any `stop` string."""

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's context."""


REINSTALL_CUDA = "make install-cuda (README: A stronger model, or a GPU)"


def log_offload(n_gpu_layers: int | str) -> None:
    """Say where generation runs when llama.cpp cannot offload layers it was asked to.  Takes
    the setting as given: 'auto' resolves to 0 on a CPU build, yet a GPU left idle is still
    worth the warning."""
    if n_gpu_layers == 0 or gpu_offload_supported():
        return
    gpu = nvidia_gpu()
    if gpu or (isinstance(n_gpu_layers, int) and n_gpu_layers > 0):
        # Loud on purpose: "GPU offload silently not working" is a classic local-RAG complaint.
        # The default (-1, all layers) is no reason to warn on a machine without a GPU.
        log.warning("%s, but this llama.cpp build has no GPU backend: generation runs on the CPU. "
                    "To use the GPU, rebuild llama-cpp-python with CUDA (needs the CUDA toolkit): %s",
                    f"A GPU is present ({gpu})" if gpu else f"ARCHIVIST_N_GPU_LAYERS={n_gpu_layers}",
                    REINSTALL_CUDA)
    else:
        log.info("No GPU found and this llama.cpp build has no GPU backend: generation runs on the CPU.")


class LlamaCppGenerator:
    """A GGUF model run in-process by llama-cpp-python, using the chat template stored in the file."""

    def __init__(self, model_path: Path, n_ctx: int, n_threads: int | None,
                 n_gpu_layers: int | str) -> None:
        from llama_cpp import Llama  # heavy: import on construction

        self.gpu_layers_requested = n_gpu_layers  # as configured: a number or 'auto'
        log_offload(n_gpu_layers)
        n_gpu_layers = resolve_gpu_layers(n_gpu_layers)
        self.n_gpu_layers = n_gpu_layers
        # llama-cpp-python reads None as half of os.cpu_count() for generation (and all of them
        # for prompt processing), ignoring CPU affinity: "all cores" means the usable ones, for both.
        self.n_threads = n_threads or usable_cpus()
        try:
            self._llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=self.n_threads,
                              n_threads_batch=self.n_threads, n_gpu_layers=n_gpu_layers, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise GenerationError(f"llama.cpp could not load {model_path.name}: {exc}",
                                  hint="Check that the file is a complete GGUF chat model.") from exc
        self.name = model_path.name
        self.path = model_path
        self.template = "gguf"
        metadata = getattr(self._llm, "metadata", None)  # None: a test double
        backend = llama_backend()
        self.model_layers = model_layers(metadata)
        self.layers_offloaded = layers_offloaded(n_gpu_layers, self.model_layers, backend)
        log.info("%s: %s of %s layers on the GPU (llama.cpp backend %s)", model_path.name,
                 self.layers_offloaded, self.model_layers, backend)
        if metadata is not None and not metadata.get("tokenizer.chat_template"):
            # Without a template llama-cpp-python falls back to llama-2's, which small instruct
            # models were not trained on; ChatML is what most of them were.
            from rag.models.repository import FALLBACK_TEMPLATE

            log.warning("%s has no chat template: using the %s template", model_path.name,
                        FALLBACK_TEMPLATE)
            self._llm.chat_format, self.template = FALLBACK_TEMPLATE, FALLBACK_TEMPLATE
        self.context_window = n_ctx
        self._lock = threading.Lock()  # a llama.cpp context serves one generation at a time

    def close(self) -> None:
        """Free the model now rather than at interpreter exit."""
        self._llm.close()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(self, messages: list[dict[str, str]], params: SamplingParams,
                 stop: list[str] | None = None) -> Iterator[str]:
        with self._lock:
            try:
                stream = self._llm.create_chat_completion(
                    messages=messages, stream=True, temperature=params.temperature,
                    top_p=params.top_p, max_tokens=params.max_tokens,
                    repeat_penalty=params.repeat_penalty, seed=params.seed, stop=stop or [])
                for part in stream:
                    piece = part["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise GenerationError(f"generation failed: {exc}",
                                      hint="Lower top_k or raise ARCHIVIST_N_CTX.") from exc
