"""`archivist ingest`: make the index match the data folder.

New files are added, changed files replace their chunks, deleted files lose theirs, unchanged files
are not even read.  Only chunk texts never embedded before reach the embedding model.  A file that
cannot be parsed is reported and leaves the index as it was (its last good version stays
searchable).  Write order per file: new chunks, then stale-chunk deletes, then the manifest row, so
a run that dies half-way is repaired by the next one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ingest import faults
from ingest.chunking import Chunker
from ingest.manifest import FileRecord, Manifest
from ingest.parsers import SUPPORTED, parse_file
from rag.embedder import Embedder
from rag.errors import ParseError
from rag.lexical import LexicalIndex
from rag.models import file_sha256
from rag.store import ChunkStore

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

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        text = (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {self.failed} failed; {self.chunks_embedded} chunks "
                f"embedded, {self.chunks_total} in the index")
        for failure in self.failures:
            text += f"\n  failed: {failure.source}: {failure.reason}"
        return text


def scan(data_dir: Path) -> Iterator[tuple[str, Path]]:
    """(source, path) for every regular file under data_dir, hidden files and folders excluded.

    Symlinks are not followed: a link could lead outside the data folder or into a loop.
    """
    for root, dirs, files in os.walk(data_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(data_dir).as_posix(), path


def reconcile_lexical(store: ChunkStore, lexical: LexicalIndex) -> bool:
    """Rebuild the lexical index from Chroma when the two disagree (an index from before the
    lexical side existed, a new term version, or a run that died between the two writes).
    Returns whether it rebuilt."""
    if lexical.count() == store.count():
        return False
    log.warning("rebuilding the lexical index from the vector store")
    by_source: dict[str, list] = {}
    for chunk in store.iter_chunks():
        by_source.setdefault(chunk.source, []).append(chunk)
    lexical.clear()
    for source, chunks in by_source.items():
        lexical.replace_source(source, sorted(chunks, key=lambda c: c.ordinal))
    return True


class Ingestor:
    def __init__(self, store: ChunkStore, lexical: LexicalIndex, manifest: Manifest,
                 embedder: Embedder, chunker: Chunker, max_file_bytes: int) -> None:
        self.store = store
        self.lexical = lexical
        self.manifest = manifest
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes

    def sync(self, data_dir: Path, progress: Callable[[int, int, str], None] | None = None) -> IngestReport:
        """`progress(done, total, source)` is called before each file."""
        report = IngestReport()
        known = self.manifest.all()
        present = dict(scan(data_dir))
        for done, (source, path) in enumerate(present.items()):
            if progress:
                progress(done, len(present), source)
            self._sync_file(source, path, known.get(source), report)
        for source, record in known.items():
            if source not in present:
                self._forget(source)
                faults.reach("before_manifest")
                self.manifest.remove(source)
                report.removed += record.file_hash is not None
        # Chunks whose file has no manifest row: left behind by a run that died mid-file.
        indexed = set(self.manifest.all())
        for orphan in (self.store.sources() | self.lexical.sources()) - indexed:
            log.info("removing orphaned chunks of %s", orphan)
            self._forget(orphan)
        rebuilt = reconcile_lexical(self.store, self.lexical)
        if rebuilt or report.added or report.updated or report.removed:
            self.manifest.bump_index_version()
        report.chunks_total = self.store.count()
        return report

    def _forget(self, source: str) -> None:
        self.store.delete_source(source)
        self.lexical.delete_source(source)

    def _sync_file(self, source: str, path: Path, known: FileRecord | None, report: IngestReport) -> None:
        stat = path.stat()
        if known and known.status == "indexed" and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            report.unchanged += 1
            return
        reason = self._reject_reason(path, stat.st_size)
        if reason is None:
            file_hash = file_sha256(path)
            if known and known.status == "indexed" and known.file_hash == file_hash:
                self.manifest.touch(source, stat.st_size, stat.st_mtime_ns)  # touched, not changed
                report.unchanged += 1
                return
            try:
                embedded, total = self._index(source, path, file_hash)
            except ParseError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug or a library failure on one file must not stop the run
                log.exception("unexpected error while indexing %s", source)
                reason = f"internal error ({type(exc).__name__}: {exc}); please report it"
            else:
                faults.reach("before_manifest")
                self.manifest.record_indexed(source, file_hash, stat.st_size, stat.st_mtime_ns, total)
                report.chunks_embedded += embedded
                if known and known.file_hash is not None:
                    report.updated += 1
                else:
                    report.added += 1
                return
        log.warning("failed: %s: %s", source, reason)
        self.manifest.record_failed(source, known, stat.st_size, stat.st_mtime_ns, reason)
        report.failed += 1
        report.failures.append(Failure(source, reason))

    def _reject_reason(self, path: Path, size: int) -> str | None:
        if path.suffix.lower() not in SUPPORTED:
            return (f"unsupported file type {path.suffix or '(no extension)'!r}; supported: "
                    f"{', '.join(sorted(SUPPORTED))}")
        if size > self.max_file_bytes:
            return (f"file is {size / 1e6:.1f} MB, over the {self.max_file_bytes / 1e6:.0f} MB limit; "
                    "raise ARCHIVIST_MAX_FILE_MB to index it")
        return None

    def _index(self, source: str, path: Path, file_hash: str) -> tuple[int, int]:
        """Replace the file's chunks; returns (chunks embedded, chunks in the file)."""
        doc = parse_file(path)
        faults.reach("after_parse")
        chunks = self.chunker.chunk(source, file_hash, doc)
        if not chunks:
            raise ParseError("no text could be extracted",
                             hint="Scanned PDFs and images need OCR, which is not supported yet.")
        known_vectors = self.store.vectors_for(c.vector_key for c in chunks)
        to_embed = list({c.vector_key: c for c in chunks if c.vector_key not in known_vectors}.values())
        fresh = self.embedder.embed([c.embedding_text() for c in to_embed])
        faults.reach("after_embed")
        known_vectors.update({c.vector_key: v for c, v in zip(to_embed, fresh)})
        old_ids = self.store.ids_for_source(source)
        self.store.upsert(chunks, [known_vectors[c.vector_key] for c in chunks])
        faults.reach("after_upsert")
        self.store.delete(old_ids - {c.chunk_id for c in chunks})
        faults.reach("after_stale_delete")
        self.lexical.replace_source(source, chunks)
        faults.reach("after_lexical")
        return len(to_embed), len(chunks)
