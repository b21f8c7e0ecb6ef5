"""The lexical (BM25) index in PostgreSQL (ARCHIVIST_DB_URL): the same interface and the same
ranking as the SQLite FTS5 index (rag/storage/lexical.py has the interface), so that hosts sharing the database
share it.

Terms are those of rag.storage.lexical.columns() (the heading's, the text's and the file's
opening line's terms: jieba for Chinese and Japanese, words and identifier parts otherwise; and the
Chinese bigrams), then tokenized as FTS5 does it there (`porter unicode61 tokenchars '_'`):
lowercase, diacritics removed, the Porter stem.  Each chunk's stems are stored as postings with
their frequency, each column's occurrences counted as its weight in
rag.storage.lexical.WEIGHTS says (FTS5's column weights), its length being all four columns'
tokens; and search computes FTS5's bm25() in SQL: for each query phrase, idf * f * (k1 + 1) / (f +
k1 * (1 - b + b * len / avglen)), with idf = ln((N - n + 0.5) / (n + 0.5)) (at least 1e-6), k1 =
1.2, b = 0.75, negated (lower is better, as FTS5's).  Every collection and generation has its rows
under its own `index_name`.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

from rag.core.shapes import Chunk
from rag.language.terms import TERMS_VERSION, opening
from rag.storage.database import Database
from rag.storage.lexical import (CHUNK_COLUMNS, WEIGHTS, LexicalHit, chunk_from_row, columns,
                                 next_version, word_parts)

# Bump with TERMS_VERSION, or when _tokens() changes: the index is then rebuilt from the chunks.
PG_TERMS_VERSION = f"{TERMS_VERSION}/pg2"  # pg2: rag.storage.lexical.WEIGHTS baked in
K1, B = 1.2, 0.75  # FTS5's bm25() constants

MIGRATIONS: list[tuple[str, str]] = [
    ("001_lexical", """
        CREATE TABLE lexical_meta (index_name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                   PRIMARY KEY (index_name, key));
        CREATE TABLE lexical_chunks (
            index_name TEXT NOT NULL, chunk_id TEXT NOT NULL, source TEXT NOT NULL,
            ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, page INTEGER,
            heading TEXT, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL, text TEXT NOT NULL,
            head_terms TEXT NOT NULL, terms TEXT NOT NULL,
            length INTEGER NOT NULL,              -- tokens, heading and text: BM25's document length
            PRIMARY KEY (index_name, chunk_id));
        CREATE INDEX lexical_chunks_by_source ON lexical_chunks (index_name, source, ordinal);
        CREATE TABLE lexical_postings (
            index_name TEXT NOT NULL, term TEXT NOT NULL, chunk_id TEXT NOT NULL,
            freq DOUBLE PRECISION NOT NULL,       -- occurrences, the heading's weighted
            PRIMARY KEY (index_name, term, chunk_id),
            FOREIGN KEY (index_name, chunk_id) REFERENCES lexical_chunks ON DELETE CASCADE);
        CREATE INDEX lexical_postings_by_chunk ON lexical_postings (index_name, chunk_id);
    """),
    # Passages read by OCR carry the recogniser's confidence (NULL: not OCRed).
    ("002_ocr_confidence", "ALTER TABLE lexical_chunks ADD COLUMN ocr_confidence DOUBLE PRECISION"),
]

_TOKEN = re.compile(r"\w+")
@functools.lru_cache(maxsize=1)
def _porter():
    import snowballstemmer

    return snowballstemmer.stemmer("porter")  # the algorithm FTS5's porter tokenizer implements


@functools.lru_cache(maxsize=200_000)
def _token(token: str) -> str:
    token = "".join(ch for ch in unicodedata.normalize("NFD", token) if not unicodedata.combining(ch))
    return _porter().stemWord(token) if token.isascii() and len(token) >= 3 else token


def _tokens(text: str) -> list[str]:
    """FTS5's tokens of a string of terms (unicode61 with '_' a token character, then porter)."""
    return [_token(t) for t in _TOKEN.findall(text.lower())]


class PostgresLexicalIndex:
    """One index (a collection's generation) in the shared database (rag/storage/lexical.py
    has its interface)."""

    def __init__(self, url: str, index_name: str) -> None:
        self._db = Database(url, "lexical", [], MIGRATIONS)
        self._name = index_name
        self._lock = threading.Lock()
        with self._lock:
            version = self._meta("terms_version")
            if version is None:
                self._set_meta("terms_version", PG_TERMS_VERSION)
            self._db.execute("INSERT INTO lexical_meta VALUES (?, 'index_version', ?) "
                             "ON CONFLICT DO NOTHING", (index_name, f"{secrets.token_hex(8)}-0"))
        self.stale = version is not None and version != PG_TERMS_VERSION

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM lexical_meta WHERE index_name = ? AND key = ?",
                               (self._name, key)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO lexical_meta VALUES (?, ?, ?) ON CONFLICT (index_name, key) "
                         "DO UPDATE SET value = excluded.value", (self._name, key, value))

    def reset(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ?", (self._name,))
            self._set_meta("terms_version", PG_TERMS_VERSION)
        self.stale = False

    def drop(self) -> None:
        """Delete every row of this index (its generation is being dropped)."""
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ?", (self._name,))
            self._db.execute("DELETE FROM lexical_meta WHERE index_name = ?", (self._name,))

    def close(self) -> None:
        self._db.close()

    # --- writes ------------------------------------------------------------------------
    def replace_source(self, source: str, chunks: Sequence[Chunk]) -> None:
        rows, postings = [], []
        title = opening(chunks)
        for c in chunks:
            fields = columns(c, title)
            tokens = [_tokens(field) for field in fields]
            rows.append((self._name, c.chunk_id, c.source, c.ordinal, c.start, c.end, c.page,
                         c.heading, c.content_hash, c.file_hash, c.text, fields[0], fields[1],
                         sum(map(len, tokens)), c.ocr_confidence))  # the table's column order
            freq: Counter = Counter()
            for weight, field_tokens in zip(WEIGHTS, tokens):
                for token, n in Counter(field_tokens).items():
                    freq[token] += weight * n
            postings += [(self._name, token, c.chunk_id, float(n)) for token, n in freq.items()]
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ? AND source = ?",
                             (self._name, source))
            # A chunk id moving from another source (a renamed file) replaces its old row.
            if rows:
                self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ? AND chunk_id = ANY(?)",
                                 (self._name, [r[1] for r in rows]))
            self._db.copy("lexical_chunks", rows)
            self._db.copy("lexical_postings", postings)

    def index_version(self) -> str:
        with self._lock:
            return self._meta("index_version")

    def bump_version(self) -> None:
        with self._lock:
            self._set_meta("index_version", next_version(self._meta("index_version")))

    def delete_source(self, source: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ? AND source = ?",
                             (self._name, source))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM lexical_chunks WHERE index_name = ?", (self._name,))

    # --- reads -------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM lexical_chunks WHERE index_name = ?",
                                    (self._name,)).fetchone()[0]

    def is_empty(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM lexical_chunks WHERE index_name = ? LIMIT 1",
                                    (self._name,)).fetchone() is None

    def sources(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute(
                "SELECT DISTINCT source FROM lexical_chunks WHERE index_name = ?", (self._name,))}

    def ocr_pages(self) -> dict[str, int]:
        """Pages read by OCR, per source that has any (what the library page shows)."""
        with self._lock:
            return dict(self._db.execute(
                "SELECT source, count(DISTINCT coalesce(page, 0)) FROM lexical_chunks "
                "WHERE index_name = ? AND ocr_confidence IS NOT NULL GROUP BY source",
                (self._name,)).fetchall())

    def search(self, question_terms: Sequence[str], k: int,
               sources: Iterable[str] | None = None) -> list[LexicalHit]:
        """BM25 over any of the terms (OR), best first; optionally within some sources.  A term
        is a phrase, as in FTS5: two terms with one stem count twice."""
        phrases = [token for t in question_terms for token in _tokens(t)]
        if not phrases:
            return []
        where, within = "", []
        if sources is not None:
            within = [list(sources)]
            if not within[0]:
                return []
            where = "WHERE c.source = ANY(?)"
        sql = f"""
            WITH s AS (SELECT count(*)::float8 AS n, avg(length)::float8 AS avglen
                       FROM lexical_chunks WHERE index_name = ?),
                 q AS (SELECT term, count(*) AS times FROM unnest(?::text[]) AS term GROUP BY term),
                 w AS (SELECT p.term, q.times, greatest(ln((s.n - count(*) + 0.5) / (count(*) + 0.5)),
                                                        1e-6) AS idf
                       FROM lexical_postings p JOIN q ON q.term = p.term CROSS JOIN s
                       WHERE p.index_name = ? GROUP BY p.term, q.times, s.n)
            SELECT c.chunk_id, c.source,
                   -sum(w.times * w.idf * p.freq * {K1 + 1} /
                        (p.freq + {K1} * ({1 - B} + {B} * c.length / s.avglen))) AS rank
            FROM w JOIN lexical_postings p ON p.index_name = ? AND p.term = w.term
                   JOIN lexical_chunks c ON c.index_name = p.index_name AND c.chunk_id = p.chunk_id
                   CROSS JOIN s
            {where}
            GROUP BY c.chunk_id, c.source ORDER BY rank, c.chunk_id LIMIT ?"""
        params = [self._name, phrases, self._name, self._name, *within, k]
        with self._lock:
            return [LexicalHit(cid, source, rank) for cid, source, rank in self._db.execute(sql, params)]

    def absent(self, words: Sequence[str]) -> list[str]:
        """Those of `words` that no chunk contains; a dotted or hyphenated word counts as
        present where one chunk has all its parts."""
        out = []
        with self._lock:
            for word in words:
                parts = sorted({token for part in word_parts(word) for token in _tokens(part)})
                if parts and self._db.execute(
                        "SELECT 1 FROM lexical_postings WHERE index_name = ? AND term = ANY(?) "
                        "GROUP BY chunk_id HAVING count(*) = ? LIMIT 1",
                        (self._name, parts, len(parts))).fetchone() is None:
                    out.append(word)
        return out

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, list[str]]]:
        if not chunk_ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS}, head_terms || ' ' || terms FROM lexical_chunks "
                "WHERE index_name = ? AND chunk_id = ANY(?)", (self._name, list(chunk_ids))).fetchall()
        return {row[0]: (chunk_from_row(row), row[-1].split()) for row in rows}

    def neighbours(self, chunk: Chunk, before: int, after: int) -> list[Chunk]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS} FROM lexical_chunks WHERE index_name = ? AND source = ? "
                "AND file_hash IS NOT DISTINCT FROM ? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
                (self._name, chunk.source, chunk.file_hash, chunk.ordinal - before,
                 chunk.ordinal + after)).fetchall()
        return [chunk_from_row(r) for r in rows]

    def chunks_in_span(self, chunk: Chunk, start: int, end: int) -> list[Chunk]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {CHUNK_COLUMNS} FROM lexical_chunks WHERE index_name = ? AND source = ? "
                "AND file_hash IS NOT DISTINCT FROM ? AND start >= ? AND \"end\" <= ? ORDER BY start",
                (self._name, chunk.source, chunk.file_hash, start, end)).fetchall()
        return [chunk_from_row(r) for r in rows]
