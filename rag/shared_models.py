"""The embedding and chat models of one process, shared by every collection.

Each is loaded on first use (seconds), once, under a lock, so request threads can ask
concurrently.  The chat model answers one request at a time: `gate` is its queue.  Its identity
for cache keys is cheap (file name, size and mtime, without loading it); its sha256, which audit
records carry, is computed once per file.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.gate import GenerationGate
from rag.generator import Generator, LlamaCppGenerator
from rag.models import file_sha256, resolve_embed_model, resolve_llm_model
from rag.remote_generator import OpenAICompatibleGenerator
from rag.settings import Settings

log = logging.getLogger(__name__)


class Models:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        """`embedder`, `generator`: ready-made models (tests pass fakes); else the configured ones."""
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._injected_generator = generator is not None
        self._sha256: dict[tuple[Path, int, int], str] = {}
        self._lock = threading.RLock()
        self.gate = GenerationGate(settings.llm.max_queue, slots=settings.llm.llm_parallel)

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                cfg = self.settings.embedding
                self._embedder = SentenceTransformerEmbedder(
                    resolve_embed_model(cfg.embed_model), cfg.embed_model, batch_size=cfg.embed_batch_size)
            return self._embedder

    @property
    def generator(self) -> Generator:
        return self.load_generator()

    def load_generator(self) -> Generator:
        """The chat model, loaded now if it is not yet (ModelNotFoundError, GenerationError)."""
        with self._lock:
            if self._generator is None:
                cfg = self.settings.llm
                if cfg.llm_url:
                    self._generator = OpenAICompatibleGenerator(cfg)
                else:
                    self._generator = LlamaCppGenerator(self._llm_path(), n_ctx=cfg.n_ctx,
                                                        n_threads=cfg.n_threads,
                                                        n_gpu_layers=cfg.n_gpu_layers)
            return self._generator

    @property
    def loaded_llm_name(self) -> str | None:
        """The chat model's file name if it is loaded (never triggers loading)."""
        return self._generator.name if self._generator else None

    def _llm_path(self) -> Path | None:
        """The chat model's file; None for a ready-made generator without one (a test fake)."""
        if self._injected_generator:
            return getattr(self._generator, "path", None)
        if self.settings.llm.llm_url:
            return None  # the model file is the servers' business
        return resolve_llm_model(self.settings.llm.llm_model)

    def llm_name(self) -> str:
        """The chat model's file name, without loading it."""
        path = self._llm_path()
        return path.name if path else self.generator.name

    def llm_key(self) -> str:
        """Changes whenever the chat model file does (name, size, mtime): for cache keys, so a
        cached answer is found without loading or hashing the model."""
        path = self._llm_path()
        if path is None:
            return self.generator.name
        stat = path.stat()
        return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"

    def llm_sha256(self) -> str:
        """The chat model file's sha256 (read once per file version, a second or two for 100 MB)."""
        path = self._llm_path()
        if path is None:
            return self.generator.name
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._sha256:
                self._sha256[key] = file_sha256(path)
            return self._sha256[key]

    def warm_up(self) -> None:
        """Load both models and hash the chat model now rather than at the first request.  A
        model server that does not answer yet is logged, not fatal: search works without it."""
        _ = self.embedder, self.generator
        self.llm_sha256()
        probe = getattr(self._generator, "probe", None)
        problem = probe() if probe else None
        if problem:
            log.warning("No model server answers yet (%s): questions get 503 until one does; "
                        "search works meanwhile.", problem)

    def close(self) -> None:
        """Free the chat model now (llama.cpp otherwise complains at interpreter exit)."""
        with self._lock:
            close = getattr(self._generator, "close", None)
            if close and not self._injected_generator:
                close()
                self._generator = None
