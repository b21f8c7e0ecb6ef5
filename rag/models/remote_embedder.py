"""Embeddings from OpenAI-compatible servers (ARCHIVIST_EMBED_URL) instead of a model loaded here:
another `archivist serve` (say, one on a GPU host), llama.cpp's `llama-server --embeddings`, vLLM.

The index records which model made its vectors (the embedder's fingerprint), and the query must
be embedded by the same one.  `archivist serve` says which it used (the `archivist` field of its
/v1/embeddings reply holds its fingerprint and window), so an index built here with the same
model stays usable; another server's vectors are fingerprinted by the model name it was sent and
their dimension, so they are never mixed with anyone else's.

A model trained with prompts (multilingual-e5's "query: " and "passage: ") gets them: an Archivist
server is told what the texts are (`input_type`) and puts its own model's; for another server
they are put before the texts here, when the model is on this machine.

Chunks are cut by token counts: with the embedding model's tokenizer where that model is on this
machine (the chunks are then those a local ingest makes), else with a safe over-estimate (one token
per UTF-8 byte: smaller chunks, never truncated ones).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from rag.core.errors import ArchivistError, ModelNotFoundError
from rag.core.sections import EmbeddingConfig
from rag.models.embedder import Kind, prefixed, prompts
from rag.models.server_pool import NoServerAnswered, ServerPool, Skip, describe, http_client


BATCH = 256  # texts per request: well inside every server's limit (OpenAI's is 2,048)
DEFAULT_WINDOW = 256  # tokens, for servers that do not say: all-MiniLM-L6-v2's


class EmbeddingServerUnavailableError(ArchivistError):
    """No embedding server at ARCHIVIST_EMBED_URL answered (HTTP 503)."""


class OpenAICompatibleEmbedder:
    """The Embedder interface (rag/models/embedder.py) over one or more embedding servers."""

    def __init__(self, cfg: EmbeddingConfig) -> None:
        self._pool = ServerPool(cfg.servers)
        self.name = cfg.servers.served_model or cfg.embed_model
        self._http = http_client(cfg.servers)
        model_dir = _local_model(cfg.embed_model)
        self._tokenizer = _local_tokenizer(model_dir)
        self.device = "server"
        self._kinds = False  # whether the servers take `input_type` (Archivist's do)
        vectors, about = self._request(["dimension probe"], None)  # fails here when none answers
        self.dimension = len(vectors[0])
        self.fingerprint = about.get("fingerprint") or f"{self.name}@served:{self.dimension}"
        self.max_tokens = int(about.get("max_tokens") or DEFAULT_WINDOW)
        # An Archivist server puts its model's prompts ("query: ") before the texts itself;
        # for another server they are put here, when the model is known on this machine.
        self._kinds = bool(about)
        self.prompts = {} if self._kinds or model_dir is None else prompts(model_dir)

    def close(self) -> None:
        self._http.close()

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> list[list[float]]:
        texts = prefixed(texts, kind, self.prompts)
        vectors: list[list[float]] = []
        for i in range(0, len(texts), BATCH):
            vectors += self._request(texts[i:i + BATCH], kind)[0]
        return vectors

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return len(text.encode("utf-8"))

    def _request(self, texts: list[str], kind: Kind | None) -> tuple[list[list[float]], dict]:
        request = {"model": self.name, "input": texts}
        if self._kinds and kind:
            request["input_type"] = kind

        def ask(url: str) -> tuple[list[list[float]], dict]:
            reply = self._http.post(f"{url}/embeddings", json=request)
            if reply.status_code >= 500 or reply.status_code == 429:
                raise Skip(f"HTTP {reply.status_code}")
            if reply.status_code >= 400:  # the request itself is wrong: retrying won't help
                raise ArchivistError(
                    f"The embedding server at {url} refused the request (HTTP "
                    f"{reply.status_code}): {reply.text[:300]}",
                    hint="Check ARCHIVIST_EMBED_SERVED_MODEL (for `archivist serve`: a collection's "
                         "name or its embedding model's) and ARCHIVIST_EMBED_API_KEY.")
            try:
                body = reply.json()
                rows = sorted(body["data"], key=lambda row: row["index"])
                vectors = [_unit([float(v) for v in row["embedding"]]) for row in rows]
            except (ValueError, KeyError, TypeError) as exc:
                raise Skip(f"an unreadable reply ({describe(exc)})") from None
            if len(vectors) != len(texts):
                raise Skip(f"{len(vectors)} vectors for {len(texts)} texts")
            return vectors, body.get("archivist") or {}

        try:
            return self._pool.first_answer(ask)
        except NoServerAnswered as exc:
            raise EmbeddingServerUnavailableError(
                f"No embedding server answered: {exc}",
                hint="Check that the embedding server is running and reachable there (e.g. "
                     "`archivist serve` on the GPU host) and that ARCHIVIST_EMBED_URL names its /v1 "
                     "address; or leave ARCHIVIST_EMBED_URL empty to embed here.") from None


def _unit(vector: list[float]) -> list[float]:
    """Servers need not normalise; the index compares unit vectors."""
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _local_model(model: str) -> Path | None:
    """The embedding model's folder when it is on this machine (its weights are not loaded)."""
    from rag.models.files import resolve_embed_model

    try:
        return resolve_embed_model(model)
    except ModelNotFoundError:
        return None


def _local_tokenizer(model_dir: Path | None):
    """The embedding model's own tokenizer, when the model is on this machine."""
    path = model_dir / "tokenizer.json" if model_dir else None
    if path is None or not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
