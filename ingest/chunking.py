"""Sections to chunks sized in embedding-model tokens.

llama-index's SentenceSplitter does the packing (paragraphs, then sentences, then clauses, then
words, with token-measured overlap); we give it the embedding model's own tokenizer and a sentence
splitter that knows Chinese punctuation, so text without spaces still breaks at sentence and clause
ends rather than at arbitrary characters.  Chunk ids derive from source, content and occurrence, so
an unchanged passage keeps its id (and its vector) when the rest of the file changes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable

from ingest.parsers import ParsedDocument, Section
from rag.core.shapes import Chunk, sha256_text
from rag.language.text import HAN_KANA, HANGUL, SENTENCE_END_CJK

# A sentence ends at . ! ? followed by space or at a line break.  CJK text also breaks at clause
# punctuation (，、；): its sentences run long, and overlap is made of whole pieces, so pieces
# must be shorter than the overlap for neighbouring chunks to share any text.  So this is not
# rag.language.text.sentence_spans (whole sentences, for answers): it is clause-level on purpose.
_SENTENCE_END = re.compile(rf"[.!?][\"'\u201d\u2019)\]]*\s+|[{SENTENCE_END_CJK}；，、]+[\u201d\u2019」』）]*\s*|\n+")
# Clause-level fallback for long sentences (English and CJK separators).
_CLAUSE = r"[^,.;:，、；：。]+[,.;:，、；：。]?"
_BOUNDARY_BEFORE = re.compile(r"[\s,.;:!?，。、；：！？)）」』]")
_CJK_CHAR = re.compile(f"[{HAN_KANA}{HANGUL}]")
_MIN_CHUNK_TOKENS = 64  # even under an absurdly long heading


def split_sentences(text: str) -> list[str]:
    """Split into sentences that concatenate back to `text` exactly."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            pieces.append(text[start:match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def chunk_id(source: str, content_hash: str, occurrence: int) -> str:
    return hashlib.sha256(f"{source}\0{content_hash}\0{occurrence}".encode()).hexdigest()[:32]


class Chunker:
    """Cuts a ParsedDocument into Chunks no longer than the embedding window."""

    def __init__(self, count_tokens: Callable[[str], int], window: int, chunk_tokens: int,
                 overlap_tokens: int) -> None:
        self._count = count_tokens
        self._window = window - 2  # [CLS] and [SEP]
        self._chunk_tokens = chunk_tokens
        self._overlap = overlap_tokens
        self._splitters: dict[int, object] = {}

    def _splitter(self, size: int):
        if size not in self._splitters:
            from llama_index.core.node_parser import SentenceSplitter

            self._splitters[size] = SentenceSplitter(
                chunk_size=size,
                chunk_overlap=0,  # overlap is added by _overlap_start, at a word boundary
                tokenizer=lambda text: range(self._count(text)),  # only len() is used
                paragraph_separator="\n\n",
                chunking_tokenizer_fn=split_sentences,
                secondary_chunking_regex=_CLAUSE,
            )
        return self._splitters[size]

    def _overlap_start(self, body: str, floor: int, start: int, budget: int,
                       rows_only: bool = False) -> int:
        """Move `start` back over at most `budget` tokens of `body[floor:start]`, stopping at a
        word boundary (after whitespace or punctuation, or before a CJK character); in a table
        (`rows_only`) only at the start of a row, so that no chunk opens with a value cut off from
        its column name."""
        if budget == 0 or start <= floor:
            return start
        lo = max(floor, start - budget * 8)  # a token is rarely over 8 characters
        if rows_only:
            cuts = [p for p in range(max(lo, 2), start) if body.startswith("\n\n", p - 2)]
        else:
            cuts = [p for p in range(lo, start) if p == floor or _BOUNDARY_BEFORE.match(body, p - 1)
                    or _CJK_CHAR.match(body, p)]
        best = start
        left, right = 0, len(cuts) - 1
        while left <= right:  # binary search: earliest cut whose overlap still fits
            mid = (left + right) // 2
            if self._count(body[cuts[mid]:start]) <= budget:
                best, right = cuts[mid], mid - 1
            else:
                left = mid + 1
        while best < start and body[best].isspace():
            best += 1
        return best

    def chunk(self, source: str, file_hash: str, doc: ParsedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        for section in doc.sections:
            for start, end in self._section_spans(doc.text, section):
                text = doc.text[start:end]
                digest = sha256_text(text)
                occurrence = seen.get(digest, 0)
                seen[digest] = occurrence + 1
                chunks.append(Chunk(
                    chunk_id=chunk_id(source, digest, occurrence), source=source, text=text,
                    start=start, end=end, page=section.page, heading=section.heading,
                    content_hash=digest, ordinal=len(chunks), file_hash=file_hash,
                    ocr_confidence=section.ocr_confidence,
                ))
        return chunks

    def _section_spans(self, text: str, section: Section) -> list[tuple[int, int]]:
        """(start, end) offsets into `text` of the chunks of one section."""
        body = text[section.start:section.end]
        # The heading is prepended when embedding (Chunk.embedding_text): leave room for it.
        heading_tokens = self._count(section.heading) + 1 if section.heading else 0
        size = max(_MIN_CHUNK_TOKENS, min(self._chunk_tokens, self._window - heading_tokens))
        overlap = min(self._overlap, size // 2)
        spans: list[tuple[int, int]] = []
        cursor = 0
        for piece in self._splitter(size - overlap).split_text(body):
            pos = body.find(piece, cursor)
            if pos < 0:  # the splitter normalised something; fall back to the piece's head
                pos = body.find(piece[:40], cursor)
            if pos < 0:
                pos = cursor
            end = min(len(body), pos + len(piece))
            floor = spans[-1][0] + 1 if spans else 0
            spans.append((self._overlap_start(body, floor, pos, overlap, section.table) if spans else pos, end))
            cursor = end
        return [(section.start + a, section.start + b) for a, b in spans]
