"""Text embeddings.  One small interface; the sentence-transformers implementation loads lazily."""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path
from typing import Protocol, Sequence

from rag.models import embed_model_fingerprint

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str
    fingerprint: str  # changes whenever the vectors would change
    dimension: int
    max_tokens: int  # the model's window, special tokens included

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, without special tokens."""


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any local sentence-transformers directory) on the CPU or a GPU."""

    def __init__(self, model_dir: Path, name: str, batch_size: int = 32, device: str | None = None):
        from sentence_transformers import SentenceTransformer  # heavy: import on construction

        self.name = name
        self._model = SentenceTransformer(str(model_dir), device=device or "cpu", local_files_only=True)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not safe to call from several threads
        # A copy of the fast tokenizer's Rust backend counts tokens without "sequence too long"
        # warnings; the copy's padding and truncation (tokenizer.json pads to 128) are turned off.
        self._tokenizer = copy.deepcopy(self._model.tokenizer.backend_tokenizer)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self.fingerprint = f"{name}:{self.dimension}:{embed_model_fingerprint(model_dir)}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.tolist()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
