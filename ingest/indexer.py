"""The one writer of a collection's index: folder sync, uploads, deletes, re-indexing, and
rebuilding the index beside the live one.

Every write holds the index folder's writer lock (ingest/lock.py) and works on the current view
of the index (rag/storage/index_views.py), the same one readers use: ingest/pipeline.py orders its
writes so readers see each file old or new, never half.  A rebuild makes a new generation and
switches readers to it when it is complete.

Every change is recorded in the audit log (rag/audit/log.py) as it happens: "started" before it
(a change that cannot be recorded is not made) and "ok" or "failed" after, by `actor` (the local
CLI user by default; the HTTP routes pass the API key's, the folder watcher its own).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from ingest.chunking import Chunker
from ingest.documents import Document, UploadError, describe, store_upload
from ingest.lock import writer_lock
from ingest.manifest import Manifest
from ingest.ocr import Ocr
from ingest.pipeline import Ingestor, IngestReport, reconcile_lexical, scan
from rag.audit.events import Actor
from rag.core import collection_folders
from rag.core.errors import ArchivistError, NotFoundError
from rag.library import Collection, require_embed_model
from rag.storage import index_generations
from rag.storage.index_views import IndexView, drop_generation

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (files done, files in all, current file)


class Indexer:
    def __init__(self, collection: Collection, actor: Actor | None = None) -> None:
        self.collection = collection
        self.settings = collection.settings
        self.name = collection.name
        self.actor = actor or Actor.local_cli()

    def _audited(self, action: str, details: dict | None = None):
        """The audit log's record of one change (see the module doc)."""
        return self.collection.audit.operation(self.actor, action, self.name, details)

    # --- syncing with the folder -------------------------------------------------------
    def ingest(self, rebuild: bool = False, progress: Progress | None = None) -> IngestReport:
        """Make the collection's index match its folder; `rebuild` embeds everything again into
        a new generation (what reindex does)."""
        if rebuild:
            return self.reindex(progress)
        skip = collection_folders.skipped(self.settings.data_dir, self.name)
        with self._audited("ingest") as result:
            report = self._write(lambda ingestor: ingestor.sync(self.collection.data_dir,
                                                                progress, skip))
            result.update(_counts(report))
        return report

    def sync_sources(self, sources: list[str], force: bool = False) -> IngestReport:
        """Sync just these files of the collection (uploads, deletes, re-indexing)."""
        return self._write(lambda ingestor: ingestor.sync_sources(self.collection.data_dir, sources, force))

    def repair(self) -> bool:
        """Rebuild the keyword index from the vector store if they disagree (searches refuse to
        read it meanwhile).  Returns whether anything was rebuilt."""
        with writer_lock(self.settings), self.collection.views.reading(check=False) as view:
            rebuilt = reconcile_lexical(view.store, view.lexical)
            if rebuilt:
                view.lexical.bump_version()
        if rebuilt:
            self.collection.audit.append(self.actor, "index.repair", "ok", self.name,
                                         {"rebuilt": "keyword index"})
        return rebuilt

    def _write(self, work: Callable[[Ingestor], IngestReport]) -> IngestReport:
        self._require_data_dir()
        with writer_lock(self.settings), self.collection.views.reading(check=False) as view:
            report = self._run(view, work)
        self._notify(report)
        return report

    def _run(self, view: IndexView, work: Callable[[Ingestor], IngestReport]) -> IngestReport:
        manifest = Manifest.open(self.settings, view.names)
        ingestor = self._ingestor(view, manifest)
        try:
            return work(ingestor)
        finally:
            if ingestor.ocr is not None:
                ingestor.ocr.close()  # its worker processes hold the OCR models' memory
            manifest.close()

    def _ingestor(self, view: IndexView, manifest: Manifest) -> Ingestor:
        embedder = self.collection.embedder_of(view)
        cfg = self.settings.chunking
        chunker = Chunker(embedder.count_tokens, embedder.max_tokens, cfg.chunk_tokens,
                          cfg.chunk_overlap_tokens)
        ingest = self.settings.ingest
        ocr = Ocr(ingest.ocr_max_pages, ingest.ocr_timeout_s) if ingest.ocr == "auto" else None
        return Ingestor(view.store, view.lexical, manifest, embedder, chunker,
                        int(ingest.max_file_mb * 1e6), ocr)

    def _require_data_dir(self) -> None:
        if not self.settings.data_dir.is_dir():
            raise ArchivistError(f"The data folder {self.settings.data_dir} does not exist.",
                                 hint="Create it and put documents in it, or set ARCHIVIST_DATA_DIR.")

    def _notify(self, report: IngestReport) -> None:
        for listener in list(self.collection.listeners):
            try:
                listener(self.name, report)
            except Exception:  # an observer must not fail an ingest that succeeded
                log.exception("ingest listener failed")

    # --- rebuilding beside the live index ----------------------------------------------
    def reindex(self, progress: Progress | None = None, embed_model: str | None = None,
                choose: Callable[[str], None] | None = None) -> IngestReport:
        """Rebuild the collection's index with the current models and chunking as a new
        generation, then switch to it: searches go on reading the old one until it is complete,
        and requests still reading it finish on it.  The way out of IndexMismatchError.
        `embed_model`: build with this embedding model instead, and make it the collection's
        choice (`choose(model)`, Library.choose_embed_model) just before switching."""
        self._require_data_dir()
        details = {"embed_model": embed_model} if embed_model else None
        with self._audited("reindex", details) as result:
            report = self._reindex(progress, embed_model, choose)
            result.update(_counts(report))
        return report

    def _reindex(self, progress: Progress | None, embed_model: str | None = None,
                 choose: Callable[[str], None] | None = None) -> IngestReport:
        s = self.settings
        if embed_model and choose is None:
            raise ValueError("a reindex that changes the embedding model must record the choice")
        if embed_model:
            require_embed_model(self.collection.models, embed_model)
        with writer_lock(s):
            old = self.collection.pointer.current(self.name)
            new = index_generations.names(s.index_dir, self.name, old.generation + 1)
            drop_generation(s.chroma, new, s.db_url)  # leftovers of a reindex that died before switching
            Manifest.drop(s, new)
            view = self.collection.open_view(new, embed_model)  # fails here if it cannot load
            skip = collection_folders.skipped(s.data_dir, self.name)
            try:
                report = self._run(view, lambda ingestor: ingestor.sync(self.collection.data_dir,
                                                                        progress, skip))
            except BaseException:
                view.drop()
                raise
            if embed_model and embed_model != self.collection.embed_model:
                # Chosen before the switch: a reader that opens the new generation meanwhile
                # finds the model that built it; one that opens the old generation only now
                # (another process starting) is told to retry by IndexMismatchError.  If this
                # process dies between the two, the next reindex finishes the change.
                choose(embed_model)
            self.collection.pointer.set_active(self.name, new.generation)
            if not self.collection.views.switch(view, old):
                drop_generation(s.chroma, old, s.db_url)
            # Readers never read the manifest: the old generation's rows can go now.
            Manifest.drop(s, old)
        self._notify(report)
        return report

    # --- documents ---------------------------------------------------------------------
    def documents(self) -> list[Document]:
        """Every file of the collection: on disk, in the manifest, or both, by source."""
        records = {}
        names = self.collection.current_names()
        if Manifest.exists(self.settings, names):
            manifest = Manifest.open(self.settings, names)
            try:
                records = manifest.all()
            finally:
                manifest.close()
        on_disk = dict(scan(self.collection.data_dir,
                            collection_folders.skipped(self.settings.data_dir, self.name)))
        ocr = {}
        if records:
            try:
                with self.collection.views.reading(check=False) as view:
                    ocr = view.lexical.ocr_pages()
            except ArchivistError:  # e.g. built with another model: the list is how users see it
                log.warning("scanned-page counts unavailable for %s", self.name, exc_info=True)
        return [describe(self.name, source, on_disk.get(source), records.get(source),
                         ocr.get(source, 0))
                for source in sorted(records.keys() | on_disk.keys())]

    def document(self, doc_id: str) -> Document:
        for doc in self.documents():
            if doc.id == doc_id:
                return doc
        raise NotFoundError(f"No document {doc_id!r} in collection {self.name!r}.",
                            hint="GET /v1/documents lists the documents and their ids.")

    def add_documents(self, uploads: list[tuple[str | None, BinaryIO]]) -> tuple[list[Document], IngestReport]:
        """Store uploaded files in the collection's folder and index just them.  Every upload is
        checked before any is stored: one bad file refuses the request and stores nothing."""
        with self._audited("document.upload", {"files": [str(name)[:300] for name, _ in uploads]}) as result:
            docs, report = self._add_documents(uploads)
            result.update({"stored": [d.source for d in docs], **_counts(report)})
        return docs, report

    def _add_documents(self, uploads: list[tuple[str | None, BinaryIO]]
                       ) -> tuple[list[Document], IngestReport]:
        folder = self.collection.data_dir
        max_bytes = int(self.settings.ingest.max_file_mb * 1e6)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            names = [store_upload(staging, filename, stream, max_bytes) for filename, stream in uploads]
            if len(set(names)) != len(names):
                raise UploadError("Two uploads have the same file name.", hint="Rename one of them.")
            for name in names:
                os.replace(staging / name, folder / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report = self.sync_sources(names)
        by_source = {d.source: d for d in self.documents()}
        return [by_source[name] for name in names], report

    def delete_document(self, doc_id: str) -> None:
        doc = self.document(doc_id)
        with self._audited("document.delete", {"document": doc.id, "source": doc.source}) as result:
            (self.collection.data_dir / doc.source).unlink(missing_ok=True)
            result.update(_counts(self.sync_sources([doc.source])))

    def reindex_document(self, doc_id: str) -> Document:
        """Parse and embed the file again even if it looks unchanged (e.g. after a parser fix)."""
        doc = self.document(doc_id)
        with self._audited("document.reindex", {"document": doc.id, "source": doc.source}) as result:
            result.update(_counts(self.sync_sources([doc.source], force=True)))
        return self.document(doc_id)


def _counts(report: IngestReport) -> dict:
    """What the audit log keeps of an ingest report: the counts and the files that failed."""
    counts = {k: v for k, v in report.to_dict().items() if isinstance(v, int)}
    return {**counts, "failures": [f.source for f in report.failures[:100]]}
