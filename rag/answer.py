"""Question in, grounded answer with citations out."""

from __future__ import annotations

import logging
from typing import Sequence

from rag.embedder import Embedder
from rag.generator import Generator, SamplingParams
from rag.prompt import NO_ANSWER, build_messages, clean_markers, is_refusal
from rag.store import ChunkStore
from rag.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

_NOTHING_FOUND = "I could not find anything relevant to this question in the documents."


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

    def ask(self, question: str, top_k: int) -> Answer:
        hits = self.retriever.search(question, top_k)
        relevant = [h for h in hits if h.score >= self.min_score]
        if not relevant:
            best = f"{hits[0].score:.2f}" if hits else "none: the index is empty"
            return Answer(answer=_NOTHING_FOUND, citations=_citations(hits), refused=True,
                          reason=f"no passage is similar enough to the question (best score {best}, "
                                 f"threshold {self.min_score})")
        passages = self._fit_to_context(question, relevant)
        text = "".join(self.generator.generate(build_messages(question, passages), self.params)).strip()
        text = clean_markers(text, len(passages))
        if not text or is_refusal(text):
            return Answer(answer=text or NO_ANSWER, citations=_citations(passages), refused=True,
                          reason="the model found no answer in the retrieved passages")
        return Answer(answer=text, citations=_citations(passages), refused=False)

    def _fit_to_context(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        """Keep the best passages that fit in the context with room left for the answer."""
        budget = self.generator.context_window - self.params.max_tokens
        kept: list[Hit] = []
        while True:
            candidate = hits[:len(kept) + 1]
            messages = build_messages(question, list(candidate))
            used = sum(self.generator.count_tokens(m["content"]) + 8 for m in messages)
            if used > budget and kept:
                log.info("context full: sending %d of %d passages", len(kept), len(hits))
                return kept
            kept = list(candidate)
            if len(kept) == len(hits):
                return kept


def _citations(hits: Sequence[Hit]) -> list[Citation]:
    return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
