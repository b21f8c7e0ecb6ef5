"""Text embeddings.  One small interface; the sentence-transformers implementation loads lazily."""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import functools
import json
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Literal, Protocol, Sequence

from rag.models.files import embed_model_fingerprint

log = logging.getLogger(__name__)


Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str
    fingerprint: str  # changes whenever the vectors would change
    dimension: int
    max_tokens: int  # the model's window, special tokens included

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> list[list[float]]:
        """Unit-length vectors, one per text.  `kind`: what the texts are, for models trained
        to tell a search from what it finds (multilingual-e5: "query: ", "passage: "); a
        comparison of like with like (an answer sentence with a passage sentence) embeds both
        as queries, as e5's authors advise for symmetric tasks."""

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, without special tokens."""


def prompts(model_dir: Path) -> dict[str, str]:
    """The text put before a query and before a passage, as the model's sentence-transformers
    configuration names them ({"query": "query: ", "passage": "passage: "}; "document" is
    read as "passage"); none for a model trained without."""
    try:
        found = json.loads((model_dir / "config_sentence_transformers.json").read_text()).get("prompts") or {}
    except (OSError, ValueError):
        return {}
    return {kind: found[key] for kind, keys in (("query", ("query",)), ("passage", ("passage", "document")))
            for key in keys if found.get(key)}


def prefixed(texts: Sequence[str], kind: str, prompts: dict[str, str]) -> list[str]:
    prefix = prompts.get(kind, "")
    return [prefix + text for text in texts] if prefix else list(texts)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers directory) on the CPU or a GPU."""

    def __init__(self, model_dir: Path, name: str, batch_size: int = 32, device: str | None = None,
                 bf16: bool = False):
        """`bf16`: run the matrix products in bfloat16 on the CPU (torch autocast), for CPUs with
        AMX (rag/models/gpu.py cpu_has_amx_bf16); the vectors stay within 1e-4 cosine of fp32's."""
        from sentence_transformers import SentenceTransformer  # heavy: import on construction

        self.name = name
        self._model = SentenceTransformer(str(model_dir), device=device or "cpu", local_files_only=True)
        self.device = str(self._model.device)  # what torch runs it on: "cpu", "cuda:0"
        self._bf16 = bf16 and self.device == "cpu"
        self.precision = "bf16" if self._bf16 else "fp32"
        self._batch_size = batch_size
        self._worker = _Worker(self._encode, batch_size)
        # A copy of the fast tokenizer's Rust backend counts tokens without "sequence too long"
        # warnings; the copy's padding and truncation (tokenizer.json pads to 128) are turned off.
        self._tokenizer = copy.deepcopy(self._model.tokenizer.backend_tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self.fingerprint = f"{name}:{self.dimension}:{embed_model_fingerprint(model_dir)}"
        self.prompts = prompts(model_dir)

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> list[list[float]]:
        if not texts:
            return []
        return self._worker.run(prefixed(texts, kind, self.prompts))

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import contextlib

        import torch

        # Autocast keeps layer norms, softmax and pooling in fp32 and runs the linear layers in
        # bf16, which AMX tiles multiply several times faster than fp32 (bench/embed_speed.py).
        # It is thread-local, so it is entered here, on the worker thread that encodes.
        precision = torch.autocast("cpu", dtype=torch.bfloat16) if self._bf16 else contextlib.nullcontext()
        with precision:
            vectors = self._model.encode(
                texts,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32").tolist()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


class _Job:
    def __init__(self, texts: list[str]):
        self.texts, self.done = texts, threading.Event()
        self.vectors: list[list[float]] = []
        self.error: BaseException | None = None


class _Worker:
    """Runs every encode on one thread of its own, batching the queries that wait together.

    Why (measured with bench/embed_threads.py): a model called from the server's 40 request
    threads grew the process by 500 MB, still growing, and was slower.  Concurrent searches each
    embed one short question, and encoding the waiting ones as one batch costs little more than
    encoding one.  A job as big as a batch (an ingest batch) runs alone.  Batches of varying
    shapes leave glibc's heap fragmented (RSS crept up by 400 MB), so free memory is handed back
    to the system after each encode.
    """

    def __init__(self, encode, batch_size: int):
        self._encode, self._batch_size = encode, batch_size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def run(self, texts: list[str]) -> list[list[float]]:
        job = _Job(texts)
        self._ensure_started()
        self._jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.vectors

    def _ensure_started(self) -> None:
        # Started on first use (no thread at import or construction), and again in a forked
        # child, which inherits the queue but not the thread.
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():
                self._jobs, self._pid = queue.SimpleQueue(), os.getpid()
                self._thread = threading.Thread(target=self._loop, name="embedder", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        jobs, carried = self._jobs, None
        while True:
            batch = [carried or jobs.get()]
            carried, size = None, len(batch[0].texts)
            while size < self._batch_size:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    break
                if size + len(job.texts) > self._batch_size:
                    carried = job  # first in the next batch
                    break
                batch.append(job)
                size += len(job.texts)
            try:
                vectors = self._encode([t for job in batch for t in job.texts])
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                for job in batch:
                    job.error = exc
            else:
                start = 0
                for job in batch:
                    job.vectors = vectors[start:start + len(job.texts)]
                    start += len(job.texts)
            for job in batch:
                job.done.set()
            release_free_memory()  # after the callers are released: they need not wait for it


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS): there the call is skipped."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Return the heap's free pages to the system (about a millisecond)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
