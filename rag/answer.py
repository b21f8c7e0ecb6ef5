"""Question in, grounded answer with citations out."""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

from rag.generator import Generator, SamplingParams
from rag.prompt import NO_ANSWER, STOP, build_messages, clean_markers, is_refusal
from rag.retriever import Passage, SearchFilter
from rag.types import Answer, Citation, Hit, SentenceSupport
from rag.verify import Verifier

log = logging.getLogger(__name__)

_NOTHING_FOUND = "I could not find anything relevant to this question in the documents."
_HISTORY_TURNS = 3  # earlier exchanges kept in the prompt; a small model loses track beyond that
_FOLLOW_UP_CHARS = 40  # a question this short after another one is probably a follow-up


class Retriever(Protocol):
    def search(self, question: str, top_k: int, filt: SearchFilter | None = None) -> list[Hit]: ...

    def widen(self, hits: Sequence[Hit], neighbours: int) -> list[Passage]: ...


class Answerer:
    def __init__(self, retriever: Retriever, generator: Generator, params: SamplingParams,
                 neighbours: int = 1, verifier: Verifier | None = None) -> None:
        self.retriever = retriever
        self.generator = generator
        self.params = params
        self.neighbours = neighbours
        self.verifier = verifier

    def ask(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None,
            filt: SearchFilter | None = None) -> Answer:
        history = (history or [])[-_HISTORY_TURNS:]
        hits = self.retriever.search(self._search_query(question, history), top_k, filt)
        relevant = [h for h in hits if h.relevant]
        if not relevant:
            best = f"{hits[0].score:.2f}" if hits else "none: nothing indexed matches"
            return Answer(answer=_NOTHING_FOUND, citations=_citations(hits), refused=True,
                          reason=f"no passage is relevant enough to the question (best similarity "
                                 f"{best}, and too few of its words found)")
        passages = self._fit_to_context(question, self.retriever.widen(relevant, self.neighbours),
                                        history)
        messages = build_messages(question, [p.text for p in passages], history)
        text = "".join(self.generator.generate(messages, self.params, STOP)).strip()
        text = clean_markers(text, len(passages))
        citations = _citations([p.hit for p in passages])
        if not text or is_refusal(text):
            return Answer(answer=text or NO_ANSWER, citations=citations, refused=True,
                          reason="the model found no answer in the retrieved passages")
        if self.verifier is None:
            return Answer(answer=text, citations=citations, refused=False)
        text, verdicts = self.verifier.check(text, [p.chunks or (p.hit.chunk,) for p in passages])
        for verdict in verdicts:  # each citation quotes the first sentence it supports
            if verdict.supported and citations[verdict.citation - 1].quote is None:
                citations[verdict.citation - 1] = citations[verdict.citation - 1].model_copy(update={
                    "quote": verdict.quote, "quote_start": verdict.quote_start,
                    "quote_end": verdict.quote_end})
        sentences = [SentenceSupport(text=v.text, supported=v.supported, citation=v.citation,
                                     score=v.score, quote_start=v.quote_start, quote_end=v.quote_end)
                     for v in verdicts]
        return Answer(answer=text, citations=citations, refused=False, sentences=sentences)

    @staticmethod
    def _search_query(question: str, history: list[tuple[str, str]]) -> str:
        """A short follow-up ("and its weight?") is searched together with the previous question."""
        if history and len(question) < _FOLLOW_UP_CHARS:
            return f"{history[-1][0]} {question}"
        return question

    def _fit_to_context(self, question: str, passages: Sequence[Passage],
                        history: list[tuple[str, str]]) -> list[Passage]:
        """Keep the best passages that fit in the context with room left for the answer."""
        budget = self.generator.context_window - self.params.max_tokens
        kept: list[Passage] = []
        for passage in passages:
            messages = build_messages(question, [p.text for p in kept + [passage]], history)
            used = sum(self.generator.count_tokens(m["content"]) + 8 for m in messages)
            if used > budget and kept:
                log.info("context full: sending %d of %d passages", len(kept), len(passages))
                break
            kept.append(passage)
        return kept


def _citations(hits: Sequence[Hit]) -> list[Citation]:
    return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
