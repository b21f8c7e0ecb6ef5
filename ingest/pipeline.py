"""`archivist ingest`: make the index match the data folder.

New files are added, changed files replace their chunks, deleted files lose theirs, unchanged files
are not even read.  Only chunk texts never embedded before reach the embedding model.  A file that
cannot be parsed is reported and leaves the index as it was (its last good version stays
searchable).  Write order per file: new chunks into Chroma, then the lexical rows (one transaction),
then stale-chunk deletes, then the manifest row, so a run that dies half-way is repaired by the
next one.  Small files are written in batches (one Chroma call per batch), in the same order.

Readers see each file old or new, never half: a search keeps only chunks that the lexical index
holds (rag/retrieval/retriever.py), so a file's lexical transaction is the moment its new version
appears and its old one goes, whatever state Chroma is in around it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

from ingest import faults
from ingest.chunking import Chunker
from ingest.manifest import FileRecord, Manifest
from ingest.ocr import Ocr
from ingest.parsers import SUPPORTED, parse_file
from rag.core.background import Background
from rag.core.errors import ParseError
from rag.models.embedder import Embedder
from rag.models.files import file_sha256
from rag.storage.chunk_store import ChunkStore
from rag.storage.lexical import LexicalIndex

log = logging.getLogger(__name__)


@dataclass
class Failure:
    source: str
    reason: str


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    failures: list[Failure] = field(default_factory=list)
    # Files indexed without some of their pages (OCR limits, OCR off), and why.
    skipped_pages: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def combine(cls, reports: Iterable[IngestReport]) -> IngestReport:
        total = cls()
        for report in reports:
            for name, value in vars(report).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    @classmethod
    def from_dict(cls, data: dict) -> IngestReport:
        return cls(**{**data, "failures": [Failure(**f) for f in data.get("failures", [])],
                      "skipped_pages": [Failure(**f) for f in data.get("skipped_pages", [])]})

    @classmethod
    def by_collection(cls, reports: dict[str, IngestReport]) -> dict:
        """The totals, as before collections existed, and each collection's own counts: what
        `archivist ingest --json` prints and POST /v1/ingest returns."""
        total = cls.combine(reports.values()).to_dict()
        return {**total, "collections": {name: r.to_dict() for name, r in reports.items()}}

    def summary(self) -> str:
        text = (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {self.failed} failed; {self.chunks_embedded} chunks "
                f"embedded, {self.chunks_total} in the index")
        for failure in self.failures:
            text += f"\n  failed: {failure.source}: {failure.reason}"
        for skipped in self.skipped_pages:
            text += f"\n  skipped pages: {skipped.source}: {skipped.reason}"
        return text


def scan(data_dir: Path, skip: Collection[str] = ()) -> Iterator[tuple[str, Path]]:
    """(source, path) for every regular file under data_dir, hidden files and folders excluded,
    and the top-level folders named in `skip` (other collections).

    Symlinks are not followed: a link could lead outside the data folder or into a loop.
    """
    for root, dirs, files in os.walk(data_dir, followlinks=False):
        top = Path(root) == data_dir
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (top and d in skip))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            yield safe_source(path.relative_to(data_dir).as_posix()), path


# Characters a source name shows escaped: control characters (a newline in a file name would
# forge lines in reports and logs) and bidirectional overrides (which make a name read backwards).
_ESCAPE = {chr(c) for c in range(32)} | {"\x7f"} | set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe_source(name: str) -> str:
    """The name a file is stored and reported under: printable, and valid UTF-8.

    Bytes of a file name that are not UTF-8 arrive from os.walk as lone surrogates, which SQLite,
    Chroma and JSON cannot store; they become `\\xNN`, as do control characters.  The file itself
    is still read through its real path."""
    if name.isprintable() and name.isascii():
        return name
    out = []
    for ch in name:
        if "\udc80" <= ch <= "\udcff":  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xdc00:02x}")
        elif ch in _ESCAPE:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def reconcile_lexical(store: ChunkStore, lexical: LexicalIndex) -> bool:
    """Rebuild the lexical index from Chroma when the two disagree (an index from before the
    lexical side existed, a new term version, or a run that died between the two writes).
    Returns whether it rebuilt."""
    if not lexical.stale and lexical.count() == store.count():
        return False
    log.warning("rebuilding the lexical index from the vector store")
    if lexical.stale:
        lexical.reset()
    by_source: dict[str, list] = {}
    for chunk in store.iter_chunks():
        by_source.setdefault(chunk.source, []).append(chunk)
    lexical.clear()
    for source, chunks in by_source.items():
        lexical.replace_source(source, sorted(chunks, key=lambda c: c.ordinal))
    return True


class Ingestor:
    def __init__(self, store: ChunkStore, lexical: LexicalIndex, manifest: Manifest,
                 embedder: Embedder, chunker: Chunker, max_file_bytes: int,
                 ocr: Ocr | None = None) -> None:
        self.store = store
        self.lexical = lexical
        self.manifest = manifest
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.ocr = ocr  # reads images and scanned PDF pages; None: OCR is off
        self._batch: list[_Pending] = []  # prepared, not yet embedded
        self._in_flight: tuple | None = None  # (batch, vectors by key, keys, Background embedding)

    def sync(self, data_dir: Path, progress: Callable[[int, int, str], None] | None = None,
             skip: Collection[str] = ()) -> IngestReport:
        """`progress(done, total, source)` is called before each file; `skip`: see scan()."""
        report = IngestReport()
        known = self.manifest.all()
        present = dict(scan(data_dir, skip))
        for done, (source, path) in enumerate(present.items()):
            if progress:
                progress(done, len(present), source)
            self._sync_file(source, path, known.get(source), report)
        self._flush(report)
        for source, record in known.items():
            if source not in present:
                self._remove(source, record, report)
        self._remove_orphans(report)
        rebuilt = reconcile_lexical(self.store, self.lexical)
        if rebuilt or report.added or report.updated or report.removed:
            self.lexical.bump_version()
        report.chunks_total = self.store.count()
        return report

    def sync_sources(self, data_dir: Path, sources: Iterable[str], force: bool = False) -> IngestReport:
        """Sync only these files (an upload, a delete, a re-index): each is indexed, updated or
        forgotten as what is on disk says; the rest of the folder is not looked at.  `force`
        parses and embeds them again even when unchanged."""
        report = IngestReport()
        known = self.manifest.all()
        for source in sources:
            path = data_dir / source
            if path.is_file() and not path.is_symlink():
                self._sync_file(source, path, known.get(source), report, force)
            elif source in known:
                self._remove(source, known[source], report)
        self._flush(report)
        if report.added or report.updated or report.removed:
            self.lexical.bump_version()
        report.chunks_total = self.store.count()
        return report

    def _remove_orphans(self, report: IngestReport) -> None:
        """Remove chunks whose file has no manifest row: left behind by a run that died mid-file.

        Listing every source reads every chunk's metadata from Chroma (seconds at 100k chunks),
        which an unchanged re-sync must not pay.  A dead run leaves the vector store holding more
        chunks than the manifest rows count, so when this run wrote nothing and the counts agree
        there is nothing to look for."""
        wrote = report.added or report.updated or report.removed or report.failed
        records = self.manifest.all()
        if not wrote and self.store.count() == sum(r.chunks for r in records.values()):
            return
        for orphan in (self.store.sources() | self.lexical.sources()) - set(records):
            log.info("removing orphaned chunks of %s", orphan)
            self._forget(orphan)

    def _remove(self, source: str, record: FileRecord, report: IngestReport) -> None:
        """A file gone from the folder: its chunks first, then its manifest row."""
        self._forget(source)
        faults.reach("before_manifest")
        self.manifest.remove(source)
        report.removed += record.file_hash is not None

    def _forget(self, source: str) -> None:
        self.lexical.delete_source(source)  # first: readers stop seeing the file at once
        self.store.delete_source(source)

    def _sync_file(self, source: str, path: Path, known: FileRecord | None, report: IngestReport,
                   force: bool = False) -> None:
        try:
            self._sync_readable_file(source, path, known, report, force)
        except OSError as exc:  # unreadable, or gone since the scan: report it, go on with the rest
            reason = f"could not read the file ({exc.strerror or exc})"
            log.warning("failed: %s: %s", source, reason)
            self.manifest.record_failed(source, known, 0, 0, reason)
            report.failed += 1
            report.failures.append(Failure(source, reason + "; check its permissions"))

    def _sync_readable_file(self, source: str, path: Path, known: FileRecord | None,
                            report: IngestReport, force: bool) -> None:
        stat = path.stat()
        same_stat = known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        if not force and known and known.status == "indexed" and same_stat:
            report.unchanged += 1
            return
        reason = self._reject_reason(path, stat.st_size)
        if reason is None:
            file_hash = file_sha256(path)
            if not force and known and known.status == "indexed" and known.file_hash == file_hash:
                self.manifest.touch(source, stat.st_size, stat.st_mtime_ns)  # touched, not changed
                report.unchanged += 1
                return
            try:
                pending = self._prepare(source, path, file_hash, known, stat.st_size, stat.st_mtime_ns)
            except ParseError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug or a library failure on one file must not stop the run
                log.exception("unexpected error while indexing %s", source)
                reason = f"internal error ({type(exc).__name__}: {exc}); please report it"
            else:
                self._batch.append(pending)
                if sum(len(p.chunks) for p in self._batch) >= _BATCH_CHUNKS:
                    self._send(report)
                return
        self._fail(source, known, stat.st_size, stat.st_mtime_ns, reason, report)

    def _fail(self, source: str, known: FileRecord | None, size: int, mtime_ns: int, reason: str,
              report: IngestReport) -> None:
        log.warning("failed: %s: %s", source, reason)
        self.manifest.record_failed(source, known, size, mtime_ns, reason)
        report.failed += 1
        report.failures.append(Failure(source, reason))

    def _fail_all(self, batch: list[_Pending], doing: str, exc: Exception, report: IngestReport) -> None:
        log.exception("%s for %d files failed", doing, len(batch))
        for p in batch:
            self._fail(p.source, p.known, p.size, p.mtime_ns,
                       f"internal error {doing} ({type(exc).__name__}: {exc}); please report it", report)

    def _reject_reason(self, path: Path, size: int) -> str | None:
        if path.suffix.lower() not in SUPPORTED:
            return (f"unsupported file type {path.suffix or '(no extension)'!r}; supported: "
                    f"{', '.join(sorted(SUPPORTED))}")
        if size == 0:  # said plainly, rather than as a parser's "no text" or "damaged" verdict
            return "the file is empty (0 bytes)"
        if size > self.max_file_bytes:
            return (f"file is {size / 1e6:.1f} MB, over the {self.max_file_bytes / 1e6:.0f} MB limit; "
                    "raise ARCHIVIST_MAX_FILE_MB to index it")
        return None

    def _prepare(self, source: str, path: Path, file_hash: str, known: FileRecord | None,
                 size: int, mtime_ns: int) -> _Pending:
        """Parse and chunk a file; its embedding and index writes wait for the batch."""
        doc = parse_file(path, self.ocr)
        faults.reach("after_parse")
        chunks = self.chunker.chunk(source, file_hash, doc)
        if not chunks:
            if doc.skipped:
                raise ParseError("no text could be extracted: " + "; ".join(doc.skipped),
                                 hint="Raise the OCR limits or turn OCR on (ARCHIVIST_OCR=auto).")
            raise ParseError("no text could be extracted",
                             hint="The file may hold only pictures without legible text.")
        return _Pending(source, chunks, self.store.ids_for_source(source), file_hash, size, mtime_ns,
                        known, doc.skipped)

    def _flush(self, report: IngestReport) -> None:
        """Embed and write everything prepared so far, and wait for it."""
        self._send(report)
        self._finish(report)

    def _send(self, report: IngestReport) -> None:
        """Start embedding the batch on a thread of its own, so that the next files are parsed
        meanwhile (the model releases the GIL); at most one batch is in flight.

        The batch before is written first, so a chunk text it embedded is found in the store
        here and not embedded again.  Every text never embedded before is embedded once per
        batch, whichever files hold it, in one call: the embedder sorts them by length across
        files, so its batches pad less than a small file's few chunks would alone."""
        batch, self._batch = self._batch, []
        self._finish(report)
        if not batch:
            return
        try:
            vectors = self.store.vectors_for({c.vector_key for p in batch for c in p.chunks})
        except Exception as exc:  # the store failed: these files stay as they were, the run goes on
            self._fail_all(batch, "reading the index", exc, report)
            return
        todo: dict[str, str] = {}  # vector_key -> text to embed, counted for the first file with it
        for p in batch:
            fresh = {c.vector_key: c.embedding_text() for c in p.chunks
                     if c.vector_key not in vectors and c.vector_key not in todo}
            p.embedded = len(fresh)
            todo.update(fresh)
        keys = list(todo)
        self._in_flight = (batch, vectors, keys,
                           Background(self.embedder.embed, [todo[k] for k in keys], name="ingest-embed"))

    def _finish(self, report: IngestReport) -> None:
        """Wait for the batch in flight, if any, and write it."""
        if self._in_flight is None:
            return
        batch, vectors, keys, embedding = self._in_flight
        self._in_flight = None
        try:
            vectors.update(zip(keys, embedding.result()))
        except Exception as exc:  # the model failed: these files stay as they were, the run goes on
            self._fail_all(batch, "embedding", exc, report)
            return
        faults.reach("after_embed")
        for p in batch:
            p.vectors = [vectors[c.vector_key] for c in p.chunks]
        self._write(batch, report)

    def _write(self, batch: list[_Pending], report: IngestReport) -> None:
        """Write the batch: new chunks, lexical rows, stale-chunk deletes, then manifest rows.

        Chroma costs tens of milliseconds per write call whatever its size, so many small files
        are written together; the order per file is unchanged, so a run killed anywhere in here
        is repaired by the next one (the manifest rows, written last, still say "not indexed")."""
        try:
            self.store.upsert([c for p in batch for c in p.chunks], [v for p in batch for v in p.vectors])
            faults.reach("after_upsert")
            for p in batch:  # each file switches from old to new here, for readers
                self.lexical.replace_source(p.source, p.chunks)
            faults.reach("after_lexical")
            self.store.delete(set().union(*(p.old_ids - {c.chunk_id for c in p.chunks} for p in batch)))
            faults.reach("after_stale_delete")
        except Exception as exc:  # the store failed: these files stay as they were, the run goes on
            self._fail_all(batch, "writing the index", exc, report)
            return
        for p in batch:
            faults.reach("before_manifest")
            self.manifest.record_indexed(p.source, p.file_hash, p.size, p.mtime_ns, len(p.chunks))
            report.chunks_embedded += p.embedded
            report.skipped_pages.extend(Failure(p.source, reason) for reason in p.skipped)
            if p.known and p.known.file_hash is not None:
                report.updated += 1
            else:
                report.added += 1


# Chunks embedded and written to Chroma per batch, at most (a single file larger than this goes
# alone).
_BATCH_CHUNKS = 1000


@dataclass
class _Pending:
    """A file parsed and chunked, whose embedding and index writes wait for the batch."""

    source: str
    chunks: list
    old_ids: set[str]
    file_hash: str
    size: int
    mtime_ns: int
    known: FileRecord | None
    skipped: list[str] = field(default_factory=list)  # ParsedDocument.skipped
    vectors: list = field(default_factory=list)  # one per chunk, once the batch is embedded
    embedded: int = 0  # chunk texts this file sent to the model
