"""Question in, grounded answer with citations out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from rag.config import SamplingParams
from rag.generator import Generator
from rag.prompt import (NO_ANSWER, STOP, SYSTEM, build_messages, clean_markers, defuse,
                        is_refusal, render_passage)
from rag.retriever import Passage, SearchFilter
from rag.types import Answer, AnswerDebug, Citation, DroppedPassage, Hit, SentenceSupport
from rag.verify import Verifier

log = logging.getLogger(__name__)

_NOTHING_FOUND = "I could not find anything relevant to this question in the documents."
_HISTORY_TURNS = 3  # earlier exchanges kept in the prompt; a small model loses track beyond that
_FOLLOW_UP_CHARS = 40  # a question this short after another one is probably a follow-up
_MESSAGE_OVERHEAD = 8  # tokens the chat template adds around each message (generous)


@dataclass
class Plan:
    """Everything decided before the model runs."""

    query: str  # what was searched
    question: str
    history: list[tuple[str, str]]
    passages: list[Passage]  # widened hits, in rank order
    texts: list[str]  # what the model reads of each passage (instruction-like sentences removed)
    defused: int  # how many such sentences were removed
    citations: list[Citation] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    debug: AnswerDebug | None = None
    answer: Answer | None = None  # set when the model need not run


class Retriever(Protocol):
    def search(self, question: str, top_k: int, filt: SearchFilter | None = None) -> list[Hit]: ...

    def widen(self, hits: Sequence[Hit], neighbours: int) -> list[Passage]: ...

    def unknown_names(self, question: str) -> list[str]: ...


class Answerer:
    """The steps of one answer.  `retrieve` decides, from the index alone, whether the model is
    needed (a refusal is not sent to it); `pack` fits the prompt into the model's context (it
    uses the model's tokenizer); `generate` runs the model; `finish` verifies its reply."""

    def __init__(self, retriever: Retriever, generator: Callable[[], Generator],
                 params: SamplingParams, neighbours: int = 1, verifier: Verifier | None = None) -> None:
        """`generator` is called when the model is first needed: a refusal never loads it."""
        self.retriever = retriever
        self._generator = generator
        self.params = params
        self.neighbours = neighbours
        self.verifier = verifier

    @property
    def generator(self) -> Generator:
        return self._generator()

    def ask(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None,
            filt: SearchFilter | None = None, debug: bool = False) -> Answer:
        plan = self.retrieve(question, top_k, history, filt)
        if plan.answer is not None:
            return plan.answer
        self.pack(plan, debug)
        return self.finish(plan, "".join(self.generate(plan)))

    def retrieve(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None,
                 filt: SearchFilter | None = None) -> Plan:
        """Search and widen the hits.  `plan.answer` is already set (a refusal) when nothing
        relevant was found: the model is not needed."""
        history = (history or [])[-_HISTORY_TURNS:]
        query = self._search_query(question, history)
        hits = self.retriever.search(query, top_k, filt)
        relevant = [h for h in hits if h.relevant]
        if not relevant:
            unknown = self.retriever.unknown_names(query)
            if unknown:
                reason = "the documents never mention " + ", ".join(f"'{n}'" for n in unknown)
            else:
                best = f"{hits[0].score:.2f}" if hits else "none: nothing indexed matches"
                reason = (f"no passage is relevant enough to the question (best similarity {best}, "
                          "and too few of its words found)")
            refusal = Answer(answer=_NOTHING_FOUND, citations=_citations(hits), refused=True,
                             query=query, reason=reason)
            return Plan(query=query, question=question, history=history, passages=[], texts=[],
                        defused=0, citations=refusal.citations, answer=refusal)
        passages = self.retriever.widen(relevant, self.neighbours)
        texts, defused = [], 0
        for passage in passages:
            text, count = defuse(passage.text)
            texts.append(text)
            defused += count
        return Plan(query=query, question=question, history=history, passages=passages,
                    texts=texts, defused=defused)

    def pack(self, plan: Plan, debug: bool = False) -> None:
        """Fit passages and history into the context; sets the messages and the citations."""
        kept, history, record = self._fit_to_context(plan.question, plan.passages, plan.texts,
                                                     plan.history)
        record.defused_sentences = plan.defused
        plan.passages = plan.passages[:kept]
        plan.messages = build_messages(plan.question, plan.texts[:kept], history)
        plan.citations = _citations([p.hit for p in plan.passages])
        plan.debug = record if debug else None

    def generate(self, plan: Plan) -> Iterator[str]:
        """The model's reply, piece by piece (closing the iterator stops generation)."""
        return self.generator.generate(plan.messages, self.params, STOP)

    def finish(self, plan: Plan, text: str) -> Answer:
        """Turn the model's reply into the answer: refusal detection, marker repair, verification."""
        text = clean_markers(text.strip(), len(plan.passages))
        citations = list(plan.citations)
        extra = {"query": plan.query, "debug": plan.debug}
        if not text or is_refusal(text):
            return Answer(answer=text or NO_ANSWER, citations=citations, refused=True,
                          reason="the model found no answer in the retrieved passages", **extra)
        if self.verifier is None:
            return Answer(answer=text, citations=citations, refused=False, **extra)
        text, verdicts = self.verifier.check(text, [p.chunks or (p.hit.chunk,) for p in plan.passages])
        for verdict in verdicts:  # each citation quotes the first sentence it supports
            if verdict.supported and citations[verdict.citation - 1].quote is None:
                citations[verdict.citation - 1] = citations[verdict.citation - 1].model_copy(update={
                    "quote": verdict.quote, "quote_start": verdict.quote_start,
                    "quote_end": verdict.quote_end})
        sentences = [SentenceSupport(text=v.text, supported=v.supported, citation=v.citation,
                                     score=v.score, quote_start=v.quote_start, quote_end=v.quote_end)
                     for v in verdicts]
        return Answer(answer=text, citations=citations, refused=False, sentences=sentences, **extra)

    @staticmethod
    def _search_query(question: str, history: list[tuple[str, str]]) -> str:
        """A short follow-up ("and its weight?") is searched together with the previous question."""
        if history and len(question) < _FOLLOW_UP_CHARS:
            return f"{history[-1][0]} {question}"
        return question

    def _fit_to_context(self, question: str, passages: Sequence[Passage], texts: Sequence[str],
                        history: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]], AnswerDebug]:
        """How many passages fit, and which history, with max_tokens left for the answer.

        Oldest conversation turns go first, then the lowest-ranked passages; what was cut is
        recorded, never silently overflowing the context."""
        count = self.generator.count_tokens
        budget = self.generator.context_window - self.params.max_tokens
        fixed = (count(SYSTEM) + count(question) + 3 * _MESSAGE_OVERHEAD)
        turns = [count(a) + count(b) + 2 * _MESSAGE_OVERHEAD for a, b in history]
        blocks = [count(render_passage(i, t)) for i, t in enumerate(texts, start=1)]
        dropped_turns = 0
        while history and fixed + sum(turns) + (blocks[0] if blocks else 0) > budget:
            history, turns, dropped_turns = history[1:], turns[1:], dropped_turns + 1
        used, kept = fixed + sum(turns), 0
        for tokens in blocks:
            if used + tokens > budget and kept:
                break
            used, kept = used + tokens, kept + 1
        dropped = [DroppedPassage(source=p.hit.chunk.source, chunk_id=p.hit.chunk.chunk_id, tokens=t)
                   for p, t in zip(passages[kept:], blocks[kept:])]
        if dropped or dropped_turns:
            log.info("context full: %d of %d passages, %d history turns dropped", len(dropped),
                     len(passages), dropped_turns)
        record = AnswerDebug(prompt_tokens=used, context_window=self.generator.context_window,
                             reserved_for_answer=self.params.max_tokens, passages_sent=kept,
                             passages_dropped=dropped, history_turns_dropped=dropped_turns)
        return kept, history, record


def _citations(hits: Sequence[Hit]) -> list[Citation]:
    return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
