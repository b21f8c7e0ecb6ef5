"""Data shapes shared by ingest, retrieval and the service.

`Citation` and `Answer` are the public answer JSON (CLI --json and HTTP); their field names are a
stable interface: add fields, never rename or remove them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from typing import Literal

from pydantic import BaseModel, Field


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A passage of one file, as stored in the index."""

    chunk_id: str  # derived from source, content and occurrence: stable across re-ingests
    source: str  # path relative to the data dir, '/'-separated
    text: str
    start: int  # character offsets into the file's extracted text
    end: int
    page: int | None  # PDF page, slide or sheet number (1-based); None for flowing text
    heading: str | None  # nearest heading above the passage
    content_hash: str  # sha256 of `text`
    ordinal: int  # position of the chunk within its file
    file_hash: str  # sha256 of the file's bytes when it was indexed
    # Mean recogniser score (0..1) when the text was read by OCR from a scan or image; None for a
    # text layer.  Lets a reader weigh a passage that may hold misread characters.
    ocr_confidence: float | None = None

    @property
    def ocr(self) -> bool:
        return self.ocr_confidence is not None

    def embedding_text(self) -> str:
        """What the embedding model sees: the heading gives a short passage its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text

    @property
    def vector_key(self) -> str:
        """Identifies the vector: equal embedding texts share one, whatever file they are in."""
        return hashlib.sha256(self.embedding_text().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # cosine similarity to the query, higher is better
    lexical: float = 0.0  # share of the question's terms found in the passage
    relevant: bool = True  # passes the relevance thresholds (see Settings.min_score, min_lexical)


class Citation(BaseModel):
    id: int = Field(description="Number used by [n] markers in the answer.")
    source: str = Field(description="File path relative to the data folder.")
    page: int | None = Field(description="PDF page, slide or sheet number (1-based), if any.")
    heading: str | None = Field(description="Nearest heading above the passage.")
    score: float = Field(description="Cosine similarity between question and passage.")
    lexical: float = Field(0.0, description="Share of the question's words found in the passage.")
    text: str = Field(description="The passage.")
    chunk_id: str = Field(description="Stable id of the passage in the index.")
    start: int = Field(description="Offset of the passage in the file's extracted text.")
    end: int = Field(description="End offset (exclusive) of the passage in the extracted text.")
    quote: str | None = Field(None, description="The sentence of the source that supports the "
                              "answer best (set when an answer sentence is verified against it).")
    quote_start: int | None = Field(None, description="Offset of the quote in the extracted text.")
    quote_end: int | None = Field(None, description="End offset of the quote in the extracted text.")
    ocr: bool = Field(False, description="The passage was read by OCR from a scanned page or an "
                      "image, so it may hold misread characters.")
    ocr_confidence: float | None = Field(None, description="Mean OCR recogniser confidence of the "
                                         "passage's page (0..1), when `ocr` is true.")

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Citation:
        c = hit.chunk
        return cls(id=number, source=c.source, page=c.page, heading=c.heading,
                   score=round(hit.score, 4), lexical=round(hit.lexical, 4), text=c.text, chunk_id=c.chunk_id,
                   start=c.start, end=c.end, ocr=c.ocr,
                   ocr_confidence=None if c.ocr_confidence is None else round(c.ocr_confidence, 4))


class SentenceSupport(BaseModel):
    text: str = Field(description="One sentence of the answer, without its marker.")
    supported: bool = Field(description="Whether a cited passage supports it.")
    citation: int | None = Field(description="Id of the citation that supports it.")
    score: float = Field(description="Support score, 0..1 (similarity blended with word overlap).")
    quote_start: int | None = Field(description="Offset of the supporting sentence in the source's "
                                    "extracted text.")
    quote_end: int | None = Field(description="End offset of the supporting sentence.")
    unsupported: str | None = Field(None, description="Why no passage supports it, e.g. \"'20' is "
                                    "not in passage [1]\" (a number, date, time, code or name "
                                    "the passage does not state), or too little similarity.")


class DroppedPassage(BaseModel):
    source: str
    chunk_id: str
    tokens: int = Field(description="Tokens the passage would have taken.")


class AnswerDebug(BaseModel):
    """How the prompt was packed: what was sent, what had to be cut to fit the context."""

    prompt_tokens: int = Field(description="Tokens of the prompt sent (estimate from the model's "
                               "tokenizer, chat-template overhead included).")
    context_window: int
    reserved_for_answer: int = Field(description="Tokens kept free for the answer (max_tokens).")
    passages_sent: int
    passages_dropped: list[DroppedPassage] = Field(default_factory=list)
    history_turns_dropped: int = 0
    defused_sentences: int = Field(0, description="Instruction-like sentences removed from the "
                                   "passages before the model saw them.")


class Answer(BaseModel):
    answer: str = Field(description="The answer; [n] markers refer to citation ids.")
    citations: list[Citation] = Field(description="Passages the answer was based on, best first.")
    refused: bool = Field(description="True when the documents do not contain an answer.")
    reason: str | None = Field(None, description="Why the question was refused, when it was.")
    sentences: list[SentenceSupport] = Field(
        default_factory=list, description="Each answer sentence with the passage that supports it.")
    debug: AnswerDebug | None = Field(None, description="Prompt packing details, when asked for.")
    query: str | None = Field(None, description="What was searched: the question, or for a "
                              "follow-up in a conversation, the question made stand-alone.")
    expansion: str | None = Field(
        None, description="Words the chat model added to the search (ARCHIVIST_QUERY_EXPANSION), "
        "when it added any: they rank the passages; relevance and refusal still read the question.")
    mode: Literal["generative", "extractive"] | None = Field(
        None, description="How the answer was written: by the model ('generative'), or quoted "
        "from the passages ('extractive'); None for a refusal.")
    draft: str | None = Field(None, description="The model's own reply, when it was replaced by "
                              "quotes because it could not be verified (answer mode 'auto').")
    unstated_facts: list[str] = Field(
        default_factory=list, description="Numbers, dates, times, codes and names the answer "
        "states that none of its passages does (generative answers; a quoted answer has none).")
    answer_id: str | None = Field(None, description="Id of the recorded answer (GET /v1/answers/{id}).")
    cached: bool = Field(False, description="Served from the record of an identical earlier ask.")


class SearchResults(BaseModel):
    results: list[Citation] = Field(description="Ranked passages, best first.")
