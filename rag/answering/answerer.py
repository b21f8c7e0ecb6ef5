"""Question in, grounded answer with citations out."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

from rag.answering.evidence import Evidence, EvidenceTest
from rag.answering.extractive import Quote, best_sentences, quoted_answer
from rag.answering.followup import FollowUp, standalone
from rag.answering.prompt import (NO_ANSWER, STOP, SYSTEM, build_messages, clean_markers, defuse,
                                  is_refusal, render_passage)
from rag.answering.verify import Verifier
from rag.core.sections import SamplingParams
from rag.core.shapes import (Answer, AnswerDebug, Chunk, Citation, DroppedPassage, Hit,
                             SentenceSupport)
from rag.language.facts import facts, missing
from rag.language.polarity import answers_no, negates
from rag.language.text import is_cjk
from rag.models.generator import Generator
from rag.retrieval.retriever import Passage, Retrieval, SearchFilter
from rag.retrieval.sentence_scores import asked_kinds, stitch

log = logging.getLogger(__name__)

_NOTHING_FOUND = "I could not find anything relevant to this question in the documents."
_CLOSEST = ("No passage clearly answers this question. The closest one says: ",
            "没有段落明确回答这个问题。最接近的一句是：")  # English, Chinese
_HISTORY_TURNS = 3  # earlier exchanges kept in the prompt; a small model loses track beyond that
_MESSAGE_OVERHEAD = 8  # tokens the chat template adds around each message (generous)


@dataclass
class Plan:
    """Everything decided before the model runs."""

    query: str  # what was searched
    question: str
    history: list[tuple[str, str]]
    follow: FollowUp  # the question made to stand alone
    passages: list[Passage]  # widened hits, in rank order
    texts: list[str]  # what the model reads of each passage (instruction-like sentences removed)
    defused: int  # how many such sentences were removed
    citations: list[Citation] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    debug: AnswerDebug | None = None
    evidence: Evidence | None = None  # that the passages answer the question
    answer: Answer | None = None  # set when the model need not run
    expansion: str | None = None  # words the chat model added to the search (retrieval.expansion)


class Retriever(Protocol):
    def retrieve(self, question: str, top_k: int, filt: SearchFilter | None = None,
                 expansion: str = "") -> Retrieval: ...

    def widen(self, hits: Sequence[Hit], neighbours: int) -> list[Passage]: ...

    def unknown_names(self, question: str) -> list[str]: ...


class Answerer:
    """The steps of one answer.  `retrieve` decides, from the index alone, whether the model is
    needed (a refusal is not sent to it); `pack` fits the prompt into the model's context (it
    uses the model's tokenizer); `generate` runs the model; `finish` verifies its reply."""

    def __init__(self, retriever: Retriever, generator: Callable[[], Generator],
                 params: SamplingParams, evidence: EvidenceTest, neighbours: int = 1,
                 verifier: Verifier | None = None, overrule_refusal: float = 1.0,
                 expand: Callable[[str], str] | None = None) -> None:
        """`generator` is called when the model is first needed: a refusal never loads it.
        `overrule_refusal`: in mode auto, the evidence from which a model reply saying "no
        answer" gives way to the quoted answer (above 1: never).  `expand`: the words to search
        with a question (rag.retrieval.expansion.QueryExpander.expand), if any."""
        self.retriever = retriever
        self._generator = generator
        self._bound: Generator | None = None
        self.params = params
        self.evidence = evidence
        self.neighbours = neighbours
        self.verifier = verifier
        self.overrule_refusal = overrule_refusal
        self.expand = expand or (lambda question: "")

    @property
    def generator(self) -> Generator:
        """The model, fixed at first use: an answer packs, runs and is recorded on one model
        even if another is switched in meanwhile (rag/models/loaded.py)."""
        if self._bound is None:
            self._bound = self._generator()
        return self._bound

    def ask(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None,
            filt: SearchFilter | None = None, debug: bool = False, mode: str = "generative") -> Answer:
        """All the steps at once (tests, scripts); the Assistant runs them apart."""
        plan = self.retrieve(question, top_k, history, filt)
        if plan.answer is not None:
            return plan.answer
        if mode == "extractive":
            return self.extract(plan)
        self.pack(plan, debug)
        return self.finish(plan, "".join(self.generate(plan)), mode)

    def retrieve(self, question: str, top_k: int, history: list[tuple[str, str]] | None = None,
                 filt: SearchFilter | None = None) -> Plan:
        """Search, widen the hits, weigh the evidence.  `plan.answer` is already set (a refusal)
        when the documents do not answer the question: the model is not needed."""
        history = (history or [])[-_HISTORY_TURNS:]
        follow = standalone(question, history)
        query = follow.query
        expansion = self.expand(query) or None  # None: nothing added (as answers report it)
        retrieval = self.retriever.retrieve(query, top_k, filt, expansion or "")
        hits = retrieval.hits

        def refuse(reason: str) -> Plan:
            refusal = Answer(answer=_NOTHING_FOUND, citations=_citations(hits), refused=True,
                             query=query, reason=reason, expansion=expansion)
            return Plan(query=query, question=question, history=history, follow=follow, passages=[],
                        texts=[], defused=0, citations=refusal.citations, answer=refusal,
                        expansion=expansion)

        if not hits:
            return refuse("nothing indexed matches the question")
        unknown = self.retriever.unknown_names(query)
        if unknown:
            return refuse("the documents never mention " + ", ".join(f"'{n}'" for n in unknown))
        widened = self.retriever.widen(hits, self.neighbours)
        cjk = is_cjk(follow.focus)
        evidence = self.evidence.weigh(follow, _asked(follow), retrieval,
                                       [p.chunks or (p.hit.chunk,) for p in widened], cjk)
        if evidence.probability < self.evidence.bar(cjk):
            plan = refuse(f"no passage answers it ({evidence.explain()}; "
                          f"{self.evidence.bar(cjk):.2f} needed)")
            return _pointing_to_closest(plan, evidence.quotes[:1])
        # The model reads the relevant passages, and the one holding the best sentence.
        holding = {q.passage - 1 for q in evidence.quotes[:1]}
        passages = [p for i, p in enumerate(widened) if p.hit.relevant or i in holding]
        texts, defused = [], 0
        for passage in passages:
            text, count = defuse(passage.text)
            texts.append(text)
            defused += count
        return Plan(query=query, question=question, history=history, follow=follow,
                    passages=passages, texts=texts, defused=defused, evidence=evidence,
                    expansion=expansion,
                    citations=_citations([p.hit for p in passages]))

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

    def finish(self, plan: Plan, text: str, mode: str = "generative") -> Answer:
        """Turn the model's reply into the answer: refusal detection, marker repair, verification.
        In mode "auto" an answer that cannot be trusted becomes the quoted one (see extract)."""
        text = clean_markers(text.strip(), len(plan.passages))
        citations = list(plan.citations)
        extra = {"query": plan.query, "debug": plan.debug, "expansion": plan.expansion}
        if not text or is_refusal(text):
            strong = plan.evidence is not None and plan.evidence.probability >= self.overrule_refusal
            if mode == "auto" and strong:  # the passages do answer it: quote them
                return self.extract(plan).model_copy(update={"draft": text or NO_ANSWER,
                                                             "debug": plan.debug})
            return Answer(answer=text or NO_ANSWER, citations=citations, refused=True,
                          reason="the model found no answer in the retrieved passages", **extra)
        if self.verifier is None:
            return Answer(answer=text, citations=citations, refused=False, mode="generative", **extra)
        reply = text
        text, verdicts = self.verifier.check(text, _chunks(plan))
        for verdict in verdicts:  # each citation quotes the first sentence it supports
            if verdict.supported and citations[verdict.citation - 1].quote is None:
                citations[verdict.citation - 1] = _quoting(citations[verdict.citation - 1], verdict.quote,
                                                           verdict.quote_start, verdict.quote_end)
        sentences = [SentenceSupport(text=v.text, supported=v.supported, citation=v.citation,
                                     score=v.score, quote_start=v.quote_start, quote_end=v.quote_end,
                                     unsupported=v.unsupported)
                     for v in verdicts]
        everything = "\n\n".join(stitch(chunks) for chunks in _chunks(plan))
        unstated = [str(f) for f in missing(_MARKERS.sub(" ", text), everything)]
        answer = Answer(answer=text, citations=citations, refused=False, sentences=sentences,
                        mode="generative", unstated_facts=list(dict.fromkeys(unstated)), **extra)
        if mode == "auto" and not (self._trustworthy(answer, reply) and self._complete(plan, answer, reply)):
            return self.extract(plan).model_copy(update={"draft": reply, "debug": plan.debug})
        return answer

    @staticmethod
    def _trustworthy(answer: Answer, reply: str) -> bool:
        """No fact that no passage states, and every sentence checked and supported; a reply too
        short to have sentences to check ("25 days [1].") must state facts its passages state.
        A bare "[1]" or "Yes." says nothing checkable.  Strict on purpose: a small model's
        unsupported sentence is as likely to invert a passage as to paraphrase it."""
        if answer.unstated_facts:
            return False
        if answer.sentences:
            return all(s.supported for s in answer.sentences)
        return bool(facts(_MARKERS.sub(" ", reply)))

    @staticmethod
    def _complete(plan: Plan, answer: Answer, reply: str) -> bool:
        """The reply answers from the sentences that answer the question best: a sentence of it
        is supported by the passage holding the best one, every number, date, time, code or name
        it states is one of theirs (or the question's), and for a question asking for a fact
        ("how much", "when") it states one of the best one's.  A reply retelling another passage
        (the bundled model's Chinese often does) answers nothing, and a verified reply about the
        wrong amount (the full membership fee, asked about juniors), or one that takes a fact from
        a neighbouring sentence ("valid for 30 days": the backups', not the password's eight
        hours), is not an answer, though every fact of it is in a passage.  Nor is a "No, ..." to
        a question whose best sentence affirms (a denial is a claim: rag/language/polarity.py)."""
        quotes = plan.evidence.quotes if plan.evidence else []
        if not quotes:
            return True
        if answers_no(reply) and not negates(quotes[0].text):  # "No, ..." where the best affirms
            return False
        if answer.sentences and not any(s.supported and s.citation == quotes[0].passage
                                        for s in answer.sentences):
            return False
        def found(text: str) -> set[tuple[str, str]]:
            return {(f.kind, f.value) for f in facts(text)}

        stated = found(_MARKERS.sub(" ", reply))
        best, *others = [found(quote.text) for quote in quotes]
        if stated - best - set().union(*others) - found(plan.question):
            return False
        return not quotes[0].kind or bool(best & stated)

    def extract(self, plan: Plan) -> Answer:
        """The quoted answer: the passages' sentences that answer the question best."""
        quotes = best_sentences(plan.follow.focus, _chunks(plan), self.verifier.embedder,
                                kinds=_asked(plan.follow), wording=plan.follow.wording)
        if plan.evidence is not None:
            quotes = self.evidence.answering(quotes, plan.evidence.dense_best, plan.evidence.dense_z,
                                             is_cjk(plan.follow.focus))
        citations = list(plan.citations)
        for quote in quotes:
            if citations[quote.passage - 1].quote is None:
                citations[quote.passage - 1] = _quoting(citations[quote.passage - 1], quote.text,
                                                        quote.start, quote.end)
        sentences = [SentenceSupport(text=q.text.strip(), supported=True, citation=q.passage,
                                     score=round(q.score, 3), quote_start=q.start, quote_end=q.end)
                     for q in quotes]
        return Answer(answer=quoted_answer(plan.question, quotes), citations=citations,
                      refused=False, sentences=sentences, query=plan.query, mode="extractive",
                      expansion=plan.expansion)

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


_MARKERS = re.compile(r"\[\d+\]")


def _asked(follow: FollowUp) -> set[str]:
    """What the question asks for (a number, a time...); a follow-up inherits its predecessor's."""
    return asked_kinds(follow.focus) or (asked_kinds(follow.previous) if follow.previous else set())


def _chunks(plan: Plan) -> list[Sequence[Chunk]]:
    """What each passage was stitched from: what verification and quotes work on."""
    return [p.chunks or (p.hit.chunk,) for p in plan.passages]


def _pointing_to_closest(plan: Plan, quotes: Sequence[Quote]) -> Plan:
    """A refusal from weak evidence still shows the sentence that came closest, as what it is:
    not an answer, but often one worded differently from the question (the bundled embedding
    model rates colloquial questions low), which the user can judge.  Still `refused`."""
    if not quotes or plan.answer is None:
        return plan
    quote = quotes[0]
    citations = list(plan.answer.citations)
    if not 0 < quote.passage <= len(citations):
        return plan
    citations[quote.passage - 1] = _quoting(citations[quote.passage - 1], quote.text.strip(),
                                            quote.start, quote.end)
    text = quoted_answer(plan.follow.focus, [quote], lead=_CLOSEST)
    plan.answer = plan.answer.model_copy(update={"answer": text, "citations": citations})
    plan.citations = citations
    return plan


def _quoting(citation: Citation, quote: str, start: int, end: int) -> Citation:
    return citation.model_copy(update={"quote": quote, "quote_start": start, "quote_end": end})


def _citations(hits: Sequence[Hit]) -> list[Citation]:
    return [Citation.from_hit(i, h) for i, h in enumerate(hits, start=1)]
