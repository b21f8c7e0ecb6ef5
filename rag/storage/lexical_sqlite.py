"""The keyword (BM25) index in SQLite (rag/storage/lexical.py has its interface), and the chunk
catalogue it is built on.

SQLite FTS5 over the same chunks as the Chroma collection: one table of chunks (text, place,
position in the file) and a full-text index over their terms, kept in sync by ingest.  Terms come
from rag/language/terms.py; FTS5 then applies the Porter stemmer.  The chunk table also answers
"which chunks surround this one" for small-to-big widening.

Chinese is matched so that no single segmentation decides: Traditional text is first written in
Simplified characters and mainland words (`to_simplified`, from OpenCC's dictionaries: 檔案 and
文件, 軟體 and 软件 are one term), and besides jieba's words each run is indexed as overlapping
character bigrams (`grams()`), which still match where jieba cuts a word the question spells
differently, or does not know it.  Four weighted columns: the chunk's heading, its text, the
file's opening line (a manual page's "ls - 列出目录内容", a chapter's title) and the bigrams.  A
question's search terms (`search_terms()`) are its words and the bigrams of what is left once
question words (怎么, 如何, 什么, 吗…) are taken out.
"""


from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Iterable, Sequence

from rag.core.shapes import Chunk
from rag.language.terms import TERMS_VERSION, opening
from rag.storage.database import connect
from rag.storage.lexical import (CHUNK_COLUMNS, WEIGHTS, LexicalHit, chunk_from_row, columns,
                                 next_version, word_parts)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER,
    heading TEXT, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL, text TEXT NOT NULL,
    head_terms TEXT NOT NULL, terms TEXT NOT NULL, ocr_confidence REAL,
    title_terms TEXT NOT NULL DEFAULT '', gram_terms TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks (source, ordinal);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    head_terms, terms, title_terms, gram_terms, content='chunks', content_rowid='id',
    tokenize="porter unicode61 tokenchars '_'");
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO fts(rowid, head_terms, terms, title_terms, gram_terms)
    VALUES (new.id, new.head_terms, new.terms, new.title_terms, new.gram_terms); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO fts(fts, rowid, head_terms, terms, title_terms, gram_terms)
    VALUES ('delete', old.id, old.head_terms, old.terms, old.title_terms, old.gram_terms);
END;
"""
# Large-index searches (SqliteLexicalIndex.search): while a question's terms have more than
# POSTINGS_BUDGET postings in all, its most frequent term stops finding candidates on its own (it
# still scores them), as long as that term is in more than COMMON_SHARE of the chunks (an IDF
# under about 5; a rare word's is 7-11).  Measured on 100k chunks with the 97 English questions
# (bench/search_latency.py), keyword search alone: 8,000 postings gives p95 28 ms with the top 10
# identical to the exact query's on 89 questions (top 50: 93% the same); 12,000 gave 34 ms and
# 94, 20,000 gave 50 ms and 97.  Hybrid search runs it beside the embedding and the vector query
# on 2 cores, where only 8,000 kept its p95 under 50 ms.  The evaluation sets (18,755 and 11,088
# chunks) score exactly as with 20,000 (bench/compare_naive.py --reuse).
POSTINGS_BUDGET = 8_000
COMMON_SHARE = 0.005


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _any(terms_: Sequence[str]) -> str:
    return " OR ".join(map(_phrase, terms_))


class SqliteLexicalIndex:
    """One SQLite file per collection generation.  Safe to use from several threads (one lock)."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)  # a new index; a no-op on an existing one
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
            if "ocr_confidence" not in columns:  # an index from before OCR: none of it was OCRed
                self._db.execute("ALTER TABLE chunks ADD COLUMN ocr_confidence REAL")
            for column in ("title_terms", "gram_terms"):  # from before them: stale, rebuilt by ingest
                if columns and column not in columns:
                    self._db.execute(f"ALTER TABLE chunks ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'terms_version'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('terms_version', ?)", (TERMS_VERSION,))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('index_version', ?)",
                             (f"{secrets.token_hex(8)}-0",))
        # Terms made by another version of terms(): searches would miss; ingest rebuilds it.
        self.stale = row is not None and row[0] != TERMS_VERSION
        self._weights = WEIGHTS[:2] if self.stale else WEIGHTS  # a stale index has two columns
        self._df: dict[str, int] = {}  # document frequency by term, for _common()
        self._df_version, self._rows = "", 0

    def reset(self) -> None:
        """Drop every row and recreate the tables for the current terms version (the writer's
        first step when rebuilding a stale index from the vector store)."""
        with self._lock:
            self._db.executescript("DROP TABLE IF EXISTS fts; DROP TABLE IF EXISTS chunks;"
                                   "DROP TRIGGER IF EXISTS chunks_ai; DROP TRIGGER IF EXISTS chunks_ad;")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('terms_version', ?)", (TERMS_VERSION,))
        self.stale = False
        self._weights = WEIGHTS

    def close(self) -> None:
        self._db.close()

    # --- writes ------------------------------------------------------------------------
    def replace_source(self, source: str, chunks: Sequence[Chunk]) -> None:
        """Make the source's chunks exactly `chunks`, in one transaction."""
        title = opening(chunks)
        rows = [(c.chunk_id, c.source, c.ordinal, c.start, c.end, c.page, c.heading, c.content_hash,
                 c.file_hash, c.text, *columns(c, title), c.ocr_confidence)
                for c in chunks]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self._db.executemany(
                "INSERT OR REPLACE INTO chunks (chunk_id, source, ordinal, start, \"end\", page, heading, "
                "content_hash, file_hash, text, head_terms, terms, title_terms, gram_terms, ocr_confidence) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)

    def index_version(self) -> str:
        """Changes with every ingest that changes the index, and differs between any two indexes
        (a random token and a counter): answers cached under another version are stale."""
        with self._lock:
            return self._version()

    def bump_version(self) -> None:
        with self._lock:
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'index_version'",
                             (next_version(self._version()),))

    def _version(self) -> str:
        return self._db.execute("SELECT value FROM meta WHERE key = 'index_version'").fetchone()[0]

    def delete_source(self, source: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chunks WHERE source = ?", (source,))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chunks")

    # --- reads -------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def is_empty(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None

    def sources(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT source FROM chunks")}

    def ocr_pages(self) -> dict[str, int]:
        """Pages read by OCR, per source that has any (what the library page shows)."""
        with self._lock:
            return dict(self._db.execute(
                "SELECT source, count(DISTINCT coalesce(page, 0)) FROM chunks "
                "WHERE ocr_confidence IS NOT NULL GROUP BY source"))

    def search(self, question_terms: Sequence[str], k: int,
               sources: Iterable[str] | None = None) -> list[LexicalHit]:
        """BM25 over any of the terms (OR), best first; optionally within some sources.

        On a large index a question's common words ("table", "postgresql") match most chunks, and
        scoring every one of them is what costs (about 0.55 µs per posting on 2 cores: 60-100 ms
        a question at 100k chunks).  So above POSTINGS_BUDGET the candidates are the chunks with
        at least one of the rarer terms: the best k by those terms alone, merged with the best k
        of those that also have a common term, scored by all terms.  BM25 is a sum over terms, so
        every chunk that has a rare term gets its exact score, and the merged top k is the top k
        of all chunks that have one (a chunk without a common term scores the same in both
        queries; one with a common term is in the second query's top k if it belongs in the
        merged one).  Only chunks with common words alone are left out: weak evidence, for the
        question's distinctive words are absent from them."""
        if not question_terms:
            return []
        wanted = None if sources is None else list(sources)
        if wanted is not None and not wanted:
            return []
        with self._lock:
            common = self._common(question_terms)
            rare = [t for t in question_terms if t not in common]
            if not common or not rare:
                return self._best(_any(question_terms), k, wanted)
            merged = {hit.chunk_id: hit for hit in self._best(_any(rare), k, wanted)}
            merged.update((hit.chunk_id, hit) for hit in
                          self._best(f"({_any(rare)}) AND ({_any(common)})", k, wanted))
        return sorted(merged.values(), key=lambda hit: hit.bm25)[:k]

    def _best(self, match: str, k: int, sources: list[str] | None) -> list[LexicalHit]:
        weights = ", ".join(map(str, self._weights))
        if sources is None:  # rank first, then read the k winners' rows (not every match's)
            sql = (f"SELECT c.chunk_id, c.source, f.rank FROM (SELECT rowid, bm25(fts, {weights}) AS rank "
                   "FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?) f JOIN chunks c ON c.id = f.rowid "
                   "ORDER BY f.rank")
            params: list = [match, k]
        else:
            sql = (f"SELECT c.chunk_id, c.source, bm25(fts, {weights}) AS rank FROM fts "
                   f"JOIN chunks c ON c.id = fts.rowid WHERE fts MATCH ? AND c.source IN "
                   f"({','.join('?' * len(sources))}) ORDER BY rank LIMIT ?")
            params = [match, *sources, k]
        return [LexicalHit(cid, source, rank) for cid, source, rank in self._db.execute(sql, params)]

    def _common(self, question_terms: Sequence[str]) -> set[str]:
        """The most frequent terms, taken while the others have more than POSTINGS_BUDGET
        postings in all and the next is in more than COMMON_SHARE of the chunks (none where the
        exact query is cheap).  Document frequencies are cached until the index changes."""
        version = self._version()
        if version != self._df_version or len(self._df) > 100_000:
            self._df, self._df_version = {}, version
            self._rows = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        for term in set(question_terms) - self._df.keys():
            self._df[term] = self._db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?",
                                              (_phrase(term),)).fetchone()[0]
        rare = sorted(set(question_terms), key=self._df.__getitem__)
        postings = sum(self._df[t] for t in rare)
        common: set[str] = set()
        while rare and postings > POSTINGS_BUDGET and self._df[rare[-1]] > COMMON_SHARE * self._rows:
            term = rare.pop()
            common.add(term)
            postings -= self._df[term]
        return common

    def absent(self, words: Sequence[str]) -> list[str]:
        """Those of `words` that no chunk contains; a dotted or hyphenated word (`pg_hba.conf`,
        `ora-01555`) counts as present where one chunk has all its parts."""
        out = []
        with self._lock:
            for word in words:
                parts = word_parts(word)
                match = " AND ".join(map(_phrase, parts))
                if match and self._db.execute("SELECT 1 FROM fts WHERE fts MATCH ? LIMIT 1",
                                              (match,)).fetchone() is None:
                    out.append(word)
        return out

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, list[str]]]:
        """Chunks by id, each with its index terms (computed once, at ingest)."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS}, head_terms || ' ' || terms FROM chunks WHERE chunk_id IN ({marks})",
                list(chunk_ids)).fetchall()
        return {row[0]: (chunk_from_row(row), row[-1].split()) for row in rows}

    # Both below read only the version of the file that `chunk` came from: if ingest replaced the
    # file since the search, they find nothing rather than splice new text onto an old hit.
    def neighbours(self, chunk: Chunk, before: int, after: int) -> list[Chunk]:
        """The chunk and up to before/after chunks around it in the same file, in order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE source = ? AND file_hash IS ? "
                "AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
                (chunk.source, chunk.file_hash, chunk.ordinal - before, chunk.ordinal + after)).fetchall()
        return [chunk_from_row(r) for r in rows]

    def chunks_in_span(self, chunk: Chunk, start: int, end: int) -> list[Chunk]:
        """The chunks of `chunk`'s file lying entirely within [start, end), by offset."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE source = ? AND file_hash IS ? "
                "AND start >= ? AND \"end\" <= ? ORDER BY start",
                (chunk.source, chunk.file_hash, start, end)).fetchall()
        return [chunk_from_row(r) for r in rows]

    def chunks_of(self, source: str) -> list[Chunk]:
        """Every chunk of one file, in order (copying an index into PostgreSQL)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE source = ? ORDER BY ordinal",
                                    (source,)).fetchall()
        return [chunk_from_row(r) for r in rows]
