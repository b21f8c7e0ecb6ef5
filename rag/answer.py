"""Question in, grounded answer with citations out."""

from __future__ import annotations

import logging
from typing import Sequence

from rag.embedder import Embedder
from rag.generator import Generator, SamplingParams
from rag.prompt import NO_ANSWER, STOP, build_messages, clean_markers, is_refusal
from rag.store import ChunkStore
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

_NOTHING_FOUND = "I could not find anything relevant to this question in the documents."
_HISTORY_TURNS = 3  # earlier exchanges kept in the prompt; a small model loses track beyond that
_FOLLOW_UP_CHARS = 40  # a question this short after another one is probably a follow-up


class Retriever:
    """Dense top-k search: the question embedded with the same model as the chunks."""

    def __init__(self, store: ChunkStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def search(self, question: str, top_k: int) -> list[Hit]:
        return self.store.query(self.embedder.embed([question])[0], top_k)


class Answerer:
    def __init__(self, retriever: Retriever, generator: Generator, params: SamplingParams,
                 min_score: float) -> None:
        self.retriever = retriever
        self.generator = generator
        self.params = params
        self.min_score = min_score

    def ask(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None) -> Answer:
        history = (history or [])[-_HISTORY_TURNS:]
        hits = self.retriever.search(self._search_query(question, history), top_k)
        relevant = [h for h in hits if h.score >= self.min_score]
        if not relevant:
            best = f"{hits[0].score:.2f}" if hits else "none: the index is empty"
            return Answer(answer=_NOTHING_FOUND, citations=_citations(hits), refused=True,
                          reason=f"no passage is similar enough to the question (best score {best}, "
                                 f"threshold {self.min_score})")
        passages = self._fit_to_context(question, relevant, history)
        messages = build_messages(question, passages, history)
        text = "".join(self.generator.generate(messages, self.params, STOP)).strip()
        text = clean_markers(text, len(passages))
        if not text or is_refusal(text):
            return Answer(answer=text or NO_ANSWER, citations=_citations(passages), refused=True,
                          reason="the model found no answer in the retrieved passages")
        return Answer(answer=text, citations=_citations(passages), refused=False)

    @staticmethod
    def _search_query(question: str, history: list[tuple[str, str]]) -> str:
        """A short follow-up ("and its weight?") is searched together with the previous question."""
        if history and len(question) < _FOLLOW_UP_CHARS:
            return f"{history[-1][0]} {question}"
        return question

    def _fit_to_context(self, question: str, hits: Sequence[Hit],
                        history: list[tuple[str, str]]) -> list[Hit]:
        """Keep the best passages that fit in the context with room left for the answer."""
        budget = self.generator.context_window - self.params.max_tokens
        kept: list[Hit] = []
        while True:
            candidate = hits[:len(kept) + 1]
            messages = build_messages(question, list(candidate), history)
            used = sum(self.generator.count_tokens(m["content"]) + 8 for m in messages)
            if used > budget and kept:
                log.info("context full: sending %d of %d passages", len(kept), len(hits))
                return kept
            kept = list(candidate)
            if len(kept) == len(hits):
                return kept


def _citations(hits: Sequence[Hit]) -> list[Citation]:
    return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
