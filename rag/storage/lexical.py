"""The keyword (BM25) index: what the search and ingest need of it, whichever database holds it.

Two implementations with the same interface and the same ranking: SQLite FTS5, one file per
collection generation (lexical_sqlite.py), and PostgreSQL, shared by every host of a deployment
(lexical_postgres.py, with ARCHIVIST_DB_URL).  index_views.open_lexical picks one; the rest of the
code sees a LexicalIndex.  What both store per chunk (its four weighted columns of terms) and how
they read rows back is defined here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from rag.core.shapes import Chunk
from rag.language.terms import grams, terms

# How much one occurrence counts in each column, against 1 in the text: headings name the topic,
# a file's opening line names the file's (every chunk of the file carries it), and a bigram
# match is weaker evidence than a word match.  lexical_postgres.py computes the same
# BM25 (it bakes the weights into its postings: bump its PG_TERMS_VERSION when they change).  Tuned
# on the zh-hard tuning half (bench/tune_retrieval.py, MRR@10): the opening line is the gain (0.48
# without, 0.56 at 0.5 or 1.0, 2.0 within 0.01), and 0.5 keeps the first Chinese set's top hit (1.0
# loses one of its 61); bigrams change nothing measurable there (0 and 0.25 alike, 0.5 and 1.0 lose
# 0.02): kept light, for words jieba cuts apart.
HEADING_WEIGHT = 3.0
TITLE_WEIGHT = 0.5
GRAM_WEIGHT = 0.25
WEIGHTS = (HEADING_WEIGHT, 1.0, TITLE_WEIGHT, GRAM_WEIGHT)


def columns(chunk: Chunk, title: str) -> tuple[str, str, str, str]:
    """The four indexed columns of a chunk (heading, text, the file's opening line with its
    bigrams, the heading's and text's bigrams), each a space-separated string of terms; `title`
    is opening() of its file."""
    head = chunk.heading or ""
    return (" ".join(terms(head)), " ".join(terms(chunk.text)), " ".join(terms(title) + grams(title)),
            " ".join(grams(head) + grams(chunk.text)))


# The chunk columns both tables have, in the order chunk_from_row reads them.
CHUNK_COLUMNS = ('chunk_id, source, text, start, "end", page, heading, content_hash, ordinal, '
                 'file_hash, ocr_confidence')


def chunk_from_row(row: Sequence) -> Chunk:
    return Chunk(chunk_id=row[0], source=row[1], text=row[2], start=row[3], end=row[4],
                 page=row[5], heading=row[6], content_hash=row[7], ordinal=row[8], file_hash=row[9],
                 ocr_confidence=row[10])


def next_version(version: str) -> str:
    """An index version is a random token (it differs between any two indexes) and a counter (it
    changes with every ingest that changes the index): answers cached under another are stale."""
    token, count = version.rsplit("-", 1)
    return f"{token}-{int(count) + 1}"


def word_parts(word: str) -> list[str]:
    """A dotted or hyphenated word's parts (`pg_hba.conf`, `ora-01555`): it counts as present
    where one chunk has all of them."""
    return [part for part in re.split(r"[.+-]+", word) if part]


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    source: str
    bm25: float  # FTS5's bm25(): lower is better


class LexicalIndex(Protocol):
    """One generation of one collection's keyword index, safe to use from several threads."""

    stale: bool  # terms made by another version of Archivist: ingest rebuilds it (reset + rows)

    def reset(self) -> None:
        """Drop every row and start again with the current terms version."""

    def close(self) -> None: ...

    # writes
    def replace_source(self, source: str, chunks: Sequence[Chunk]) -> None:
        """Make the source's chunks exactly `chunks`, in one transaction."""

    def delete_source(self, source: str) -> None: ...

    def clear(self) -> None: ...

    def index_version(self) -> str: ...

    def bump_version(self) -> None: ...

    # reads
    def count(self) -> int: ...

    def is_empty(self) -> bool: ...

    def sources(self) -> set[str]: ...

    def ocr_pages(self) -> dict[str, int]:
        """Pages read by OCR, per source that has any (what the library page shows)."""

    def search(self, question_terms: Sequence[str], k: int,
               sources: Iterable[str] | None = None) -> list[LexicalHit]:
        """BM25 over any of the terms (OR), best first; optionally within some sources."""

    def absent(self, words: Sequence[str]) -> list[str]:
        """Those of `words` that no chunk contains (see word_parts)."""

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, tuple[Chunk, list[str]]]:
        """Chunks by id, each with its index terms (computed once, at ingest)."""

    # Both below read only the version of the file that `chunk` came from: if ingest replaced the
    # file since the search, they find nothing rather than splice new text onto an old hit.
    def neighbours(self, chunk: Chunk, before: int, after: int) -> list[Chunk]:
        """The chunk and up to before/after chunks around it in the same file, in order."""

    def chunks_in_span(self, chunk: Chunk, start: int, end: int) -> list[Chunk]:
        """The chunks of `chunk`'s file lying entirely within [start, end), by offset."""
