"""The embedding and chat models of one process, shared by every collection.

Each is loaded on first use (seconds), once, under a lock, so request threads can ask
concurrently.  The chat model answers one request at a time: `gate` is its queue.  Its identity
for cache keys is cheap (file name, size and mtime, without loading it); its sha256, which audit
records carry, is computed once per file (rag/models/repository.py FileFacts, shared with `models
list`).

Which chat model file is loaded follows rag/models/repository.py; once loaded, that file is the
model until `switch_llm` swaps in another (POST /v1/admin/model).  A swap never waits for answers in
progress: each answer holds the generator it started with (rag/answering/answerer.py binds it), so a
streamed answer finishes on the old model, and the old model is freed when its last answer lets go.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from rag.core.errors import ConfigError
from rag.core.settings import Settings
from rag.models.embedder import Embedder, SentenceTransformerEmbedder
from rag.models.files import resolve_embed_model
from rag.models.generation_gate import GenerationGate
from rag.models.generator import Generator, LlamaCppGenerator
from rag.models.gpu import cpu_has_amx_bf16, resolve_embed_device
from rag.models.remote_generator import OpenAICompatibleGenerator
from rag.models.repository import ModelRepository

log = logging.getLogger(__name__)


def load_embedder(settings: Settings, model: str | None = None) -> Embedder:
    """The embedding model `model` (default: the configured one; ARCHIVIST_EMBED_BACKEND picks
    what runs it on the CPU), or the embedding servers of ARCHIVIST_EMBED_URL embedding with it."""
    cfg = settings.embedding
    if model and model != cfg.embed_model:
        if cfg.servers.url and cfg.servers.served_model:
            raise ConfigError(
                f"A collection uses the embedding model {model!r}, but the embedding servers are "
                f"told to embed with {cfg.servers.served_model!r} (ARCHIVIST_EMBED_SERVED_MODEL).",
                hint="Unset ARCHIVIST_EMBED_SERVED_MODEL when the servers are `archivist serve` "
                     "(they embed with any shipped model by name), or give every collection the "
                     "servers' model.")
        cfg = cfg.model_copy(update={"embed_model": model})
    if cfg.servers.url:  # nothing loaded here; EmbeddingServerUnavailableError if none answers
        from rag.models.remote_embedder import OpenAICompatibleEmbedder

        return OpenAICompatibleEmbedder(cfg)
    model_dir = resolve_embed_model(cfg.embed_model)
    device = resolve_embed_device(cfg.embed_device)
    backend = "onnx" if cfg.embed_backend == "auto" else cfg.embed_backend  # see for_bulk_embedding
    if backend == "torch-bf16" and not cpu_has_amx_bf16():
        log.warning("ARCHIVIST_EMBED_BACKEND=torch-bf16 on a CPU without AMX-BF16: bf16 is "
                    "emulated there and slower than fp32; 'auto' would pick onnx")
    if backend == "torch-bf16" and device == "cpu":
        from rag.models.torch_embedder import TorchBertEmbedder, is_plain_bert

        batch = cfg.embed_batch_size or 8
        if is_plain_bert(model_dir):  # all-MiniLM-L6-v2: without transformers' import time
            return TorchBertEmbedder(model_dir, cfg.embed_model, batch)
        return SentenceTransformerEmbedder(model_dir, cfg.embed_model, batch, bf16=True)
    if backend in ("torch", "torch-bf16") or device != "cpu":
        return SentenceTransformerEmbedder(model_dir, cfg.embed_model, device=device,
                                           batch_size=cfg.embed_batch_size or 32)
    from rag.models import onnx_embedder

    batch = cfg.embed_batch_size or 8
    if backend == "onnx-int8":
        return onnx_embedder.OnnxEmbedder(onnx_embedder.int8_path(), model_dir, cfg.embed_model,
                                          batch, expected_sha256=onnx_embedder.INT8_SHA256)
    return onnx_embedder.OnnxEmbedder(onnx_embedder.ensure_fp32(model_dir), model_dir, cfg.embed_model,
                                      batch)


def for_bulk_embedding(settings: Settings) -> Settings:
    """The settings of a process that embeds documents and never generates (`archivist ingest`,
    `reindex`): there ARCHIVIST_EMBED_BACKEND=auto means torch-bf16 on CPUs with AMX-BF16, about
    twice onnx's speed (bench/embed_speed.py).  Everywhere else auto means onnx: torch and the
    llama.cpp build share one OpenMP runtime, and once torch's threads exist beside llama.cpp's,
    generation on 2 cores fell to 21 tokens/s from 57 (bench/generation_overhead.py: 64% serving
    overhead against 11% with onnx); probably libgomp throttling its spin-waits once it manages
    more threads than there are cores, so that llama.cpp's threads sleep between operators."""
    cfg = settings.embedding
    if cfg.embed_backend != "auto" or cfg.servers.url or not cpu_has_amx_bf16():
        return settings
    return settings.model_copy(update={"embedding": cfg.model_copy(update={"embed_backend": "torch-bf16"})})


class Models:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 generator: Generator | None = None,
                 embedders: dict[str, Embedder] | None = None) -> None:
        """`embedder`, `generator`: ready-made models (tests pass fakes); else the configured ones.
        `embedders`: ready-made embedding models other than the configured one, by name."""
        self.settings = settings
        self._embedder = embedder
        self._other_embedders: dict[str, Embedder] = dict(embedders or {})  # collections' choices
        self._generator = generator
        self._injected_generator = generator is not None
        self.repo = ModelRepository(settings.models_dir, settings.llm.llm_model)
        self._lock = threading.RLock()
        self._switching = threading.Lock()  # one switch at a time; loading happens outside _lock
        self.gate = GenerationGate(settings.llm.max_queue, slots=settings.llm.llm_parallel)

    @property
    def embedder(self) -> Embedder:
        """The configured embedding model (ARCHIVIST_EMBED_MODEL)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings)
            return self._embedder

    def embedder_for(self, model: str) -> Embedder:
        """The embedding model named `model`: the configured one, or another that a collection
        chose (loaded once, on first use, and shared by every collection that chose it)."""
        if model == self.settings.embedding.embed_model:
            return self.embedder
        with self._lock:
            if model not in self._other_embedders:
                self._other_embedders[model] = load_embedder(self.settings, model)
            return self._other_embedders[model]

    @property
    def generator(self) -> Generator:
        return self.load_generator()

    def load_generator(self) -> Generator:
        """The chat model, loaded now if it is not yet (ModelNotFoundError, GenerationError)."""
        with self._lock:
            if self._generator is None:
                if self.settings.llm.servers.url:
                    self._generator = OpenAICompatibleGenerator(self.settings.llm)
                else:
                    self._generator = self._load(self.repo.active_path())
            return self._generator

    def _load(self, path: Path) -> Generator:
        cfg = self.settings.llm
        return LlamaCppGenerator(path, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads,
                                 n_gpu_layers=cfg.n_gpu_layers)

    def switch_llm(self, path: Path, then: Callable[[], object] | None = None) -> Generator:
        """Load `path` and make it the chat model of the next generation; answers already
        streaming finish on the model they started with.  Requests go on meanwhile: the new
        model loads outside the lock, and it is hashed before the swap so the first answer on
        it does not wait for that.  `then` runs right after the swap, before any other switch
        (recording the choice: two switches at once are recorded in the order they happened)."""
        if self.settings.llm.servers.url:
            raise ConfigError("The chat model runs on the model servers of ARCHIVIST_LLM_URL, "
                              "so there is no local model to switch.",
                              hint="Switch the model on those servers, or unset ARCHIVIST_LLM_URL.")
        with self._switching:
            started = time.perf_counter()
            new = self._load(path)
            self.repo.facts.sha256(path)
            with self._lock:
                old, self._generator = self._generator, new
                users = self.gate.live()  # every answer that may run on `old` holds one of these
            log.info("chat model switched from %s to %s in %.2f s; %d answer(s) finish on %s",
                     getattr(old, "name", None), new.name, time.perf_counter() - started,
                     len(users), getattr(old, "name", None))
            if old is not None and not self._injected_generator:
                threading.Thread(target=self._retire, args=(old, users), daemon=True,
                                 name="retire-model").start()
            if then is not None:
                then()
            return new

    def _retire(self, old: Generator, users: frozenset) -> None:
        """Free `old` once the answers admitted before the switch are done with it (their
        tickets released), rather than whenever the garbage collector gets to it."""
        while any(not ticket.released for ticket in users):
            time.sleep(0.1)
        close = getattr(old, "close", None)
        if close:
            close()

    @property
    def loaded_llm_name(self) -> str | None:
        """The chat model's file name if it is loaded (never triggers loading)."""
        return self._generator.name if self._generator else None

    @property
    def loaded_embedder(self) -> Embedder | None:
        """The embedding model if it is loaded (never triggers loading)."""
        return self._embedder

    @property
    def loaded_generator(self) -> Generator | None:
        """The chat model if it is loaded (never triggers loading)."""
        return self._generator

    @property
    def loaded_llm_sha256(self) -> str | None:
        """The loaded chat model file's sha256 if it is loaded and already hashed (never hashes)."""
        path = getattr(self._generator, "path", None)
        return self.repo.facts.cached_sha256(path) if path else None

    def _llm_path(self) -> Path | None:
        """The chat model's file; None for a ready-made generator without one (a test fake)."""
        if self._injected_generator or self._generator is not None:
            return getattr(self._generator, "path", None)  # once loaded, what is loaded
        if self.settings.llm.servers.url:
            return None  # the model file is the servers' business
        return self.repo.active_path()

    def llm_name(self) -> str:
        """The chat model's file name, without loading it."""
        path = self._llm_path()
        return path.name if path else self.generator.name

    def llm_key(self, generator: Generator | None = None) -> str:
        """Changes whenever the chat model file does (name, size, mtime): for cache keys, so a
        cached answer is found without loading or hashing the model.  Of `generator` if given
        (the one an answer ran on), else of the current model."""
        path = getattr(generator, "path", None) if generator else self._llm_path()
        if path is None:
            return generator.name if generator else self.generator.name
        stat = path.stat()
        return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"

    def llm_sha256(self, generator: Generator | None = None) -> str:
        """The sha256 of `generator`'s file, else of the current chat model's (read once per
        file version, a second or two for 100 MB)."""
        path = getattr(generator, "path", None) if generator else self._llm_path()
        if path is None:
            return generator.name if generator else self.generator.name
        return self.repo.facts.sha256(path)

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
        """Free the chat model now (llama.cpp otherwise complains at interpreter exit), and an
        embedding server's connections."""
        with self._lock:
            close = getattr(self._generator, "close", None)
            if close and not self._injected_generator:
                close()
                self._generator = None
            from rag.models.remote_embedder import OpenAICompatibleEmbedder

            if isinstance(self._embedder, OpenAICompatibleEmbedder):
                self._embedder.close()
                self._embedder = None
            for name, embedder in list(self._other_embedders.items()):
                if isinstance(embedder, OpenAICompatibleEmbedder):
                    embedder.close()
                    del self._other_embedders[name]
