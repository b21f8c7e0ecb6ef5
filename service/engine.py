"""The facade the CLI and the HTTP routes share: they validate nothing and decide nothing themselves.

Components are built on first use (loading a model takes seconds), each once, under a lock, so a
server's worker threads can call in concurrently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from ingest import collections
from ingest.chunking import Chunker, sha256_text
from ingest.manifest import Manifest
from rag import generations
from ingest.pipeline import Ingestor, IngestReport, reconcile_lexical, scan
from rag.answer import Answerer
from rag.embedder import Embedder, SentenceTransformerEmbedder
from rag.errors import ArchivistError, NotFoundError
from rag.generator import Generator, LlamaCppGenerator, SamplingParams
from rag.lexical import LexicalIndex
from rag.models import file_sha256, resolve_embed_model, resolve_llm_model
from rag.retriever import HybridRetriever, RetrievalConfig, SearchFilter
from rag.settings import Settings
from rag.store import ChunkStore
from rag.types import Answer, Citation
from rag.verify import Verifier
from service.documents import Document, UploadError, describe, store_upload
from service.records import Records

log = logging.getLogger(__name__)

CHUNKING_VERSION = "1"  # bump when chunk boundaries change for the same settings


class BadRequestError(ArchivistError):
    """The caller asked for something invalid (empty question, top_k out of range, ...)."""


class IndexBusyError(ArchivistError):
    """Another ingest holds the index."""


def _cache_key(question: str, provenance: dict) -> str:
    """Same question (up to case and spacing), index version, models and parameters."""
    normal = " ".join(question.lower().split())
    return hashlib.sha256(json.dumps([normal, provenance], sort_keys=True).encode()).hexdigest()


class _SharedLock:
    """Many holders in shared mode, or one in exclusive mode."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0  # writers waiting: new readers queue behind them (no starvation)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


@contextlib.contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """The index folder's single-writer lock, across processes: ingest, uploads, the folder sync,
    reindex and export all hold it.  A second writer waits up to ingest_lock_wait_s (typically
    behind a short folder sync or upload), saying so, then fails with IndexBusyError."""
    from filelock import FileLock, Timeout

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.index_dir / "ingest.lock"))
    wait = settings.ingest_lock_wait_s
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise
            log.warning("another ingest is writing to %s; waiting up to %.0f s for it",
                        settings.index_dir, wait)
            lock.acquire(timeout=wait)
    except Timeout:
        raise IndexBusyError(f"Another ingest is running on {settings.index_dir}.",
                             hint="Wait for it to finish, then try again (or raise "
                                  "ARCHIVIST_INGEST_LOCK_WAIT_S).") from None
    try:
        yield
    finally:
        lock.release()


class Models:
    """The embedding and chat models, loaded on first use and shared by every collection's
    Engine: one copy of each in memory however many collections there are."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._generator = generator
        self._llm_sha256: str | None = None
        self._lock = threading.RLock()

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
        return self._generator.name if self._generator else None

    def llm_sha256(self) -> str:
        generator = self.generator
        with self._lock:
            if self._llm_sha256 is None:
                path = getattr(generator, "path", None)
                self._llm_sha256 = file_sha256(path) if path else generator.name
            return self._llm_sha256

    def close(self) -> None:
        """Free the chat model now (llama.cpp otherwise complains at interpreter exit)."""
        with self._lock:
            close = getattr(self._generator, "close", None)
            if close:
                close()
            self._generator = None


class Engine:
    """One collection: its index, its folder, its answers; the models come from `models`."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 generator: Generator | None = None, models: Models | None = None) -> None:
        self.settings = settings
        self.models = models or Models(settings, embedder, generator)
        self._store: ChunkStore | None = None
        self._lexical: LexicalIndex | None = None
        self._records: Records | None = None
        self._names: generations.IndexNames | None = None  # the generation the store was opened at
        self._lock = threading.RLock()
        self._swap = _SharedLock()  # searches share it; dropping an old generation takes it alone
        # Called with (engine, report) after each ingest, e.g. by the server's metrics.
        self.ingest_listeners: list[Callable[[Engine, IngestReport], None]] = []

    @property
    def collection(self) -> str:
        return self.settings.collection

    @property
    def data_dir(self) -> Path:
        """The collection's folder (NotFoundError once its marker is gone)."""
        return collections.folder(self.settings.data_dir, self.collection)

    # --- components --------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        return self.models.embedder

    @property
    def generator(self) -> Generator:
        return self.models.generator

    @property
    def loaded_llm_name(self) -> str | None:
        """The chat model's file name if it is loaded (never triggers loading)."""
        return self.models.loaded_llm_name

    def build_info(self) -> dict[str, str]:
        s = self.settings
        return {"embed_model": self.embedder.fingerprint,
                "chunking": f"v{CHUNKING_VERSION}:{s.chunk_tokens}/{s.chunk_overlap_tokens}"}

    @property
    def index_names(self) -> generations.IndexNames:
        """The active generation's names (read from the pointer: `reindex` elsewhere moves it)."""
        names = generations.current(self.settings)
        with self._lock:
            if self._names is not None and self._names != names:  # switched: reopen on the new one
                self._store = None
                if self._lexical is not None:
                    self._lexical.close()
                self._lexical = None
            self._names = names
        return names

    @property
    def store(self) -> ChunkStore:
        names = self.index_names
        with self._lock:
            if self._store is None:
                self._store = ChunkStore(self.settings.chroma_dir, names.chroma_collection,
                                         self.build_info())
            return self._store

    @property
    def lexical(self) -> LexicalIndex:
        names = self.index_names
        with self._lock:
            if self._lexical is None:
                self._lexical = LexicalIndex(names.lexical_path)
                if self._lexical.count() == 0:  # new or outdated lexical side of an existing index
                    reconcile_lexical(self.store, self._lexical)
            return self._lexical

    def retrieval_config(self) -> RetrievalConfig:
        s = self.settings
        return RetrievalConfig(candidates=s.retrieval_candidates, rrf_k=s.rrf_k,
                               lexical_weight=s.lexical_weight,
                               lexical_weight_cjk=s.lexical_weight_cjk,
                               file_support=s.file_support, max_per_file=s.max_per_file,
                               min_score=s.min_score, min_lexical=s.min_lexical,
                               min_score_cjk=s.min_score_cjk, min_lexical_cjk=s.min_lexical_cjk,
                               refuse_unknown_names=s.refuse_unknown_names)

    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.store, self.lexical, self.embedder, self.retrieval_config())

    # --- operations --------------------------------------------------------------------
    def ingest(self, *, rebuild: bool = False,
               progress: Callable[[int, int, str], None] | None = None) -> IngestReport:
        """Make the collection's index match its folder."""
        def run(ingestor: Ingestor) -> IngestReport:
            return ingestor.sync(self.data_dir, progress,
                                 skip=collections.skipped(self.settings.data_dir, self.collection))
        return self._write(run, rebuild=rebuild)

    def ingest_sources(self, sources: list[str]) -> IngestReport:
        """Sync just these files of the collection (uploads, deletes, re-indexing)."""
        return self._write(lambda ingestor: ingestor.sync_sources(self.data_dir, sources))

    def _write(self, work: Callable[[Ingestor], IngestReport], rebuild: bool = False) -> IngestReport:
        """Run `work` as the index's only writer (one lock per index folder, across processes)."""
        self._require_data_dir()
        with ingest_lock(self.settings):
            if rebuild:
                self._wipe_index()
            manifest = Manifest(self.index_names.manifest_path)
            try:
                report = work(self._ingestor(self.store, self.lexical, manifest))
            finally:
                manifest.close()
            self._notify(report)
            return report

    def _require_data_dir(self) -> None:
        if not self.settings.data_dir.is_dir():
            raise ArchivistError(f"The data folder {self.settings.data_dir} does not exist.",
                                 hint="Create it and put documents in it, or set ARCHIVIST_DATA_DIR.")

    def _ingestor(self, store: ChunkStore, lexical: LexicalIndex, manifest: Manifest) -> Ingestor:
        s = self.settings
        chunker = Chunker(self.embedder.count_tokens, self.embedder.max_tokens,
                          s.chunk_tokens, s.chunk_overlap_tokens)
        return Ingestor(store, lexical, manifest, self.embedder, chunker, int(s.max_file_mb * 1e6))

    def _notify(self, report: IngestReport) -> None:
        for listener in self.ingest_listeners:
            try:
                listener(self, report)
            except Exception:  # an observer must not fail an ingest that succeeded
                log.exception("ingest listener failed")

    # --- documents ---------------------------------------------------------------------
    def documents(self) -> list[Document]:
        """Every file of the collection: on disk, in the manifest, or both, by source."""
        records = {}
        manifest_path = self.index_names.manifest_path
        if manifest_path.exists():
            manifest = Manifest(manifest_path)
            try:
                records = manifest.all()
            finally:
                manifest.close()
        on_disk = dict(scan(self.data_dir, collections.skipped(self.settings.data_dir, self.collection)))
        return [describe(self.collection, source, on_disk.get(source), records.get(source))
                for source in sorted(records.keys() | on_disk.keys())]

    def document(self, doc_id: str) -> Document:
        for doc in self.documents():
            if doc.id == doc_id:
                return doc
        raise NotFoundError(f"No document {doc_id!r} in collection {self.collection!r}.",
                            hint="GET /v1/documents lists the documents and their ids.")

    def add_documents(self, uploads: list[tuple[str | None, BinaryIO]]) -> tuple[list[Document], IngestReport]:
        """Store uploaded files in the collection's folder and index just them.  Every upload is
        checked before any is stored: one bad file refuses the request and stores nothing."""
        import shutil
        import tempfile as _tempfile

        max_bytes = int(self.settings.max_file_mb * 1e6)
        staging = Path(_tempfile.mkdtemp(prefix=".staging-", dir=self.data_dir))
        try:
            names = [store_upload(staging, filename, stream, max_bytes) for filename, stream in uploads]
            if len(set(names)) != len(names):
                raise UploadError("Two uploads have the same file name.", hint="Rename one of them.")
            for name in names:
                os.replace(staging / name, self.data_dir / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report = self.ingest_sources(names)
        by_source = {d.source: d for d in self.documents()}
        return [by_source[name] for name in names], report

    def delete_document(self, doc_id: str) -> None:
        doc = self.document(doc_id)
        (self.data_dir / doc.source).unlink(missing_ok=True)
        self.ingest_sources([doc.source])

    def reindex_document(self, doc_id: str) -> Document:
        """Parse and embed the file again even if it looks unchanged (e.g. after a parser fix)."""
        doc = self.document(doc_id)
        self._write(lambda ingestor: ingestor.sync_sources(self.data_dir, [doc.source], force=True))
        return self.document(doc_id)

    def _wipe_index(self) -> None:
        names = self.index_names
        with self._lock:
            self._store = None
        ChunkStore.drop(self.settings.chroma_dir, names.chroma_collection)
        LexicalIndex(names.lexical_path).clear()
        self._lexical = None
        names.manifest_path.unlink(missing_ok=True)

    def reindex(self, progress: Callable[[int, int, str], None] | None = None) -> IngestReport:
        """Rebuild the collection's index with the current models and chunking, beside the active
        one, then switch to it atomically and drop the old one: searches keep being answered
        (from the old index) all along.  The way out of IndexMismatchError."""
        import shutil

        self._require_data_dir()
        s = self.settings
        with ingest_lock(s):
            old = generations.current(s)
            new = generations.names(s, old.generation + 1)
            # Leftovers of an earlier reindex that died before switching.
            ChunkStore.drop(s.chroma_dir, new.chroma_collection)
            shutil.rmtree(new.lexical_path.parent, ignore_errors=True)
            store = ChunkStore(s.chroma_dir, new.chroma_collection, self.build_info())
            lexical = LexicalIndex(new.lexical_path)
            manifest = Manifest(new.manifest_path)
            try:
                ingestor = self._ingestor(store, lexical, manifest)
                report = ingestor.sync(self.data_dir, progress,
                                       skip=collections.skipped(s.data_dir, self.collection))
                manifest.bump_index_version()  # answers cached from the old index are stale
            finally:
                manifest.close()
            generations.set_active(s.index_dir, self.collection, new.generation)
            with self._swap.exclusive(), self._lock:  # no search of this engine mid-way on the old
                if self._lexical is not None:
                    self._lexical.close()
                self._store, self._lexical, self._names = store, lexical, new
                ChunkStore.drop(s.chroma_dir, old.chroma_collection)
                if old.generation == 0:
                    for path in (old.lexical_path, old.manifest_path):
                        for extra in ("", "-wal", "-shm", "-journal"):
                            Path(f"{path}{extra}").unlink(missing_ok=True)
                else:
                    shutil.rmtree(old.lexical_path.parent, ignore_errors=True)
            self._notify(report)
            return report

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
        with self._swap.shared():
            hits = self.retriever().search(question, top_k, filt)
        return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]

    def ask(self, question: str, top_k: int | None = None,
            history: list[tuple[str, str]] | None = None, filt: SearchFilter | None = None,
            debug: bool = False) -> Answer:
        """Answer, record the answer, and serve an identical repeat from its record."""
        for kind, data in self.ask_events(question, top_k, history, filt, debug):
            if kind == "done":
                return data
        raise AssertionError("ask_events ended without an answer")  # pragma: no cover

    def ask_events(self, question: str, top_k: int | None = None,
                   history: list[tuple[str, str]] | None = None, filt: SearchFilter | None = None,
                   debug: bool = False) -> Iterator[tuple[str, Any]]:
        """The answer as it is made: ("citations", [Citation]), then ("token", str) pieces, then
        ("done", Answer) with verification.  Closing the iterator early stops generation and
        records nothing."""
        question, top_k = self.check_query(question, top_k)
        s = self.settings
        params = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                repeat_penalty=s.repeat_penalty, seed=s.seed)
        provenance = self._provenance(top_k, filt, params)
        key = None
        if not history and not debug:
            key = _cache_key(question, provenance)
            hit = self.records.cached(key)
            if hit is not None:
                answer = hit[1].model_copy(update={"answer_id": hit[0], "cached": True})
                yield "citations", answer.citations
                yield "token", answer.answer
                yield "done", answer
                return
        started = time.perf_counter()
        answerer = Answerer(self.retriever(), self.generator, params, s.context_neighbours,
                            Verifier(self.embedder, s.support_threshold))
        plan = answerer.prepare(question, top_k, history=history, filt=filt, debug=debug)
        yield "citations", plan.citations
        if plan.answer is not None:
            answer = plan.answer
            yield "token", answer.answer
        else:
            pieces: list[str] = []
            tokens = answerer.generate(plan)
            try:
                for piece in tokens:
                    pieces.append(piece)
                    yield "token", piece
            finally:
                tokens.close()  # a client that went away stops the model here
            answer = answerer.finish(plan, "".join(pieces))
        provenance["timings_ms"] = {"total": round((time.perf_counter() - started) * 1000, 1)}
        provenance["passages"] = [{"chunk_id": c.chunk_id, "source": c.source,
                                   "content_hash": sha256_text(c.text)} for c in answer.citations]
        answer_id = self.records.save_answer(self.collection, question, answer.query or question,
                                             answer, provenance, key)
        yield "done", answer.model_copy(update={"answer_id": answer_id})

    def chat(self, message: str, conversation_id: str | None = None, top_k: int | None = None,
             filt: SearchFilter | None = None) -> tuple[str, Answer]:
        """One turn of a conversation (started when conversation_id is None)."""
        for kind, data in self.chat_events(message, conversation_id, top_k, filt):
            if kind == "conversation":
                conversation_id = data
            elif kind == "done":
                return conversation_id, data
        raise AssertionError("chat_events ended without an answer")  # pragma: no cover

    def chat_events(self, message: str, conversation_id: str | None = None,
                    top_k: int | None = None, filt: SearchFilter | None = None
                    ) -> Iterator[tuple[str, Any]]:
        """("conversation", id) first, then the events of ask_events; the turn is kept once done."""
        if conversation_id is None:
            conversation_id = self.records.start_conversation(self.collection)
        history = [(t["question"], t["answer"]["answer"]) for t in self.conversation(conversation_id)
                   if not t["answer"]["refused"]]
        yield "conversation", conversation_id
        for kind, data in self.ask_events(message, top_k, history=history, filt=filt):
            if kind == "done":
                self.records.add_turn(conversation_id, data.answer_id)
            yield kind, data

    def conversation(self, conversation_id: str) -> list[dict]:
        """The conversation's turns; NotFoundError unless it belongs to this collection (another
        collection's conversation is not continued, nor is its existence revealed)."""
        if self.records.conversation_collection(conversation_id) != self.collection:
            raise NotFoundError(f"No conversation {conversation_id!r} in collection {self.collection!r}.",
                                hint="Leave conversation_id out to start a new conversation.")
        return self.records.turns(conversation_id)

    def answer_record(self, answer_id: str) -> dict:
        """The audit record; NotFoundError unless the answer was made in this collection."""
        record = self.records.get_answer(answer_id)
        if record is None or record["collection"] != self.collection:
            raise NotFoundError(f"No answer {answer_id!r} in collection {self.collection!r}.",
                                hint="Answer ids come from ask and chat replies.")
        return record

    def replay(self, answer_id: str) -> dict:
        """Re-run a recorded answer and report what changed since: passages, answer, models."""
        record = self.answer_record(answer_id)
        then = record["provenance"]
        filt = SearchFilter(**then["filter"]) if then.get("filter") else None
        s = self.settings
        params = SamplingParams(**then["params"])
        answerer = Answerer(self.retriever(), self.generator, params, s.context_neighbours,
                            Verifier(self.embedder, s.support_threshold))
        fresh = answerer.ask(record["query"], then["top_k"], filt=filt)
        before = {(p["chunk_id"], p["content_hash"]) for p in then["passages"]}
        after = {(c.chunk_id, sha256_text(c.text)) for c in fresh.citations}
        now = self._provenance(then["top_k"], filt, params)
        return {
            "answer_id": answer_id,
            "passages_changed": before != after,
            "passages_removed": sorted(cid for cid, _ in before - after),
            "passages_added": sorted(cid for cid, _ in after - before),
            "answer_changed": fresh.answer != record["answer"]["answer"],
            "index_version": {"then": then["index_version"], "now": now["index_version"]},
            "llm_sha256": {"then": then["llm_sha256"], "now": now["llm_sha256"]},
            "answer_then": record["answer"]["answer"],
            "answer_now": fresh.answer,
        }

    @property
    def records(self) -> Records:
        with self._lock:
            if self._records is None:
                self._records = Records(self.settings.index_dir / "answers.sqlite3")
            return self._records

    def index_version(self) -> str:
        manifest = Manifest(self.index_names.manifest_path)
        try:
            return manifest.index_version()
        finally:
            manifest.close()

    def _provenance(self, top_k: int, filt: SearchFilter | None, params: SamplingParams) -> dict:
        return {"collection": self.collection, "llm_model": self.generator.name,
                "llm_sha256": self.models.llm_sha256(),
                "embed_model": self.embedder.fingerprint, "index_version": self.index_version(),
                "top_k": top_k, "filter": asdict(filt) if filt else None, "params": asdict(params),
                "retrieval": asdict(self.retrieval_config())}

    def evaluate(self, paths: list[Path], top_k: int = 10, answers: bool = False) -> list:
        """Retrieval metrics per question file, then over all of them (`archivist eval`); with
        `answers`, answer metrics too (every question goes to the model: slow)."""
        from rag.evaluation import evaluate, evaluate_answers, load_questions

        if not 1 <= top_k <= self.settings.max_top_k:
            raise BadRequestError(f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}.")
        retriever = self.retriever()
        sets = [(path.name, load_questions(path)) for path in paths]
        reports = [evaluate(name, questions, retriever.search, top_k) for name, questions in sets]
        if len(sets) > 1:
            everything = [q for _, questions in sets for q in questions]
            reports.append(evaluate("all", everything, retriever.search, top_k))
        if answers:
            ask = lambda q: self.ask(q, debug=True)  # noqa: E731  (debug: never served from cache)
            reports += [evaluate_answers(name, questions, ask) for name, questions in sets]
        return reports

    def close(self) -> None:
        """Free the chat model and close the answer records."""
        self.models.close()
        with self._lock:
            if self._records is not None:
                self._records.close()
                self._records = None

    def warm_up(self) -> None:
        """Load the models and open the index now rather than on the first request."""
        _ = self.store, self.generator
