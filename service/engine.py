"""The facade the CLI and the HTTP routes share: they validate nothing and decide nothing themselves.

Components are built on first use (loading a model takes seconds), each once, under a lock, so a
server's worker threads can call in concurrently.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from ingest.chunking import Chunker
from ingest.manifest import Manifest
from ingest.pipeline import Ingestor, IngestReport, reconcile_lexical
from rag.answer import Answerer
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.errors import ArchivistError
from rag.generator import Generator, LlamaCppGenerator, SamplingParams
from rag.lexical import LexicalIndex
from rag.models import resolve_embed_model, resolve_llm_model
from rag.retriever import HybridRetriever, RetrievalConfig, SearchFilter
from rag.settings import Settings
from rag.store import ChunkStore
from rag.types import Answer, Citation
from rag.verify import Verifier

log = logging.getLogger(__name__)

CHUNKING_VERSION = "1"  # bump when chunk boundaries change for the same settings


class BadRequestError(ArchivistError):
    """The caller asked for something invalid (empty question, top_k out of range, ...)."""


class IndexBusyError(ArchivistError):
    """Another ingest holds the index."""


class Engine:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._store: ChunkStore | None = None
        self._lexical: LexicalIndex | None = None
        self._lock = threading.RLock()

    # --- components --------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                s = self.settings
                self._embedder = SentenceTransformerEmbedder(
                    resolve_embed_model(s.embed_model), s.embed_model, batch_size=s.embed_batch_size)
            return self._embedder

    @property
    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                s = self.settings
                self._generator = LlamaCppGenerator(resolve_llm_model(s.llm_model), n_ctx=s.n_ctx,
                                                    n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers)
            return self._generator

    @property
    def loaded_llm_name(self) -> str | None:
        """The chat model's file name if it is loaded (never triggers loading)."""
        return self._generator.name if self._generator else None

    def build_info(self) -> dict[str, str]:
        s = self.settings
        return {"embed_model": self.embedder.fingerprint,
                "chunking": f"v{CHUNKING_VERSION}:{s.chunk_tokens}/{s.chunk_overlap_tokens}"}

    @property
    def store(self) -> ChunkStore:
        with self._lock:
            if self._store is None:
                self._store = ChunkStore(self.settings.chroma_dir, self.settings.collection,
                                         self.build_info())
            return self._store

    @property
    def lexical(self) -> LexicalIndex:
        with self._lock:
            if self._lexical is None:
                path = self.settings.index_dir / f"lexical-{self.settings.collection}.sqlite3"
                self._lexical = LexicalIndex(path)
                if self._lexical.count() == 0:  # new or outdated lexical side of an existing index
                    reconcile_lexical(self.store, self._lexical)
            return self._lexical

    def retriever(self) -> HybridRetriever:
        s = self.settings
        config = RetrievalConfig(candidates=s.retrieval_candidates, rrf_k=s.rrf_k,
                                 lexical_weight=s.lexical_weight,
                                 lexical_weight_cjk=s.lexical_weight_cjk,
                                 file_support=s.file_support, max_per_file=s.max_per_file,
                                 min_score=s.min_score, min_lexical=s.min_lexical)
        return HybridRetriever(self.store, self.lexical, self.embedder, config)

    # --- operations --------------------------------------------------------------------
    def ingest(self, data_dir: Path | None = None, *, rebuild: bool = False,
               progress: Callable[[int, int, str], None] | None = None) -> IngestReport:
        from filelock import FileLock, Timeout

        data_dir = data_dir or self.settings.data_dir
        if not data_dir.is_dir():
            raise ArchivistError(f"The data folder {data_dir} does not exist.",
                                 hint="Create it and put documents in it, or set ARCHIVIST_DATA_DIR.")
        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.settings.index_dir / "ingest.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise IndexBusyError(f"Another ingest is running on {self.settings.index_dir}.",
                                 hint="Wait for it to finish, then run `archivist ingest` again.")
        try:
            if rebuild:
                self._wipe_index()
            manifest = Manifest(self.settings.manifest_path)
            try:
                s = self.settings
                chunker = Chunker(self.embedder.count_tokens, self.embedder.max_tokens,
                                  s.chunk_tokens, s.chunk_overlap_tokens)
                ingestor = Ingestor(self.store, self.lexical, manifest, self.embedder, chunker,
                                    int(s.max_file_mb * 1e6))
                return ingestor.sync(data_dir, progress)
            finally:
                manifest.close()
        finally:
            lock.release()

    def _wipe_index(self) -> None:
        with self._lock:
            self._store = None
        ChunkStore.drop(self.settings.chroma_dir, self.settings.collection)
        LexicalIndex(self.settings.index_dir / f"lexical-{self.settings.collection}.sqlite3").clear()
        self._lexical = None
        self.settings.manifest_path.unlink(missing_ok=True)

    def check_query(self, question: str, top_k: int | None) -> tuple[str, int]:
        """Validate user input; returns the cleaned question and the top_k to use."""
        s = self.settings
        question = (question or "").strip()
        if not question:
            raise BadRequestError("The question is empty.", hint="Ask something, e.g. \"What is ...?\"")
        if len(question) > s.max_question_chars:
            raise BadRequestError(
                f"The question is {len(question)} characters long; the limit is {s.max_question_chars}.",
                hint="Shorten it, or raise ARCHIVIST_MAX_QUESTION_CHARS.")
        top_k = s.top_k if top_k is None else top_k
        if not 1 <= top_k <= s.max_top_k:
            raise BadRequestError(f"top_k must be between 1 and {s.max_top_k}, got {top_k}.")
        return question, top_k

    def search(self, question: str, top_k: int | None = None,
               filt: SearchFilter | None = None) -> list[Citation]:
        question, top_k = self.check_query(question, top_k)
        hits = self.retriever().search(question, top_k, filt)
        return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]

    def ask(self, question: str, top_k: int | None = None,
            history: list[tuple[str, str]] | None = None, filt: SearchFilter | None = None) -> Answer:
        question, top_k = self.check_query(question, top_k)
        s = self.settings
        params = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                repeat_penalty=s.repeat_penalty, seed=s.seed)
        answerer = Answerer(self.retriever(), self.generator, params, s.context_neighbours,
                            Verifier(self.embedder, s.support_threshold))
        return answerer.ask(question, top_k, history=history, filt=filt)

    def evaluate(self, paths: list[Path], top_k: int = 10) -> list:
        """Retrieval metrics per question file, then over all of them (`archivist eval`)."""
        from rag.evaluation import evaluate, load_questions

        if not 1 <= top_k <= self.settings.max_top_k:
            raise BadRequestError(f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}.")
        retriever = self.retriever()
        sets = [(path.name, load_questions(path)) for path in paths]
        reports = [evaluate(name, questions, retriever.search, top_k) for name, questions in sets]
        if len(sets) > 1:
            everything = [q for _, questions in sets for q in questions]
            reports.append(evaluate("all", everything, retriever.search, top_k))
        return reports

    def close(self) -> None:
        """Free the chat model now (llama.cpp otherwise complains at interpreter exit)."""
        with self._lock:
            close = getattr(self._generator, "close", None)
            if close:
                close()
            self._generator = None

    def warm_up(self) -> None:
        """Load the models and open the index now rather than on the first request."""
        _ = self.store, self.generator
