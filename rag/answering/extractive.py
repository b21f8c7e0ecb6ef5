"""Extractive answers: the passages' own sentences that answer a question, quoted with citations.

Used when the model's reply cannot be trusted (no sentence of it is supported, or it states a
fact its passages do not), or always (ARCHIVIST_ANSWER_MODE=extractive).  Each sentence of the
passages is scored against the question: embedding similarity, the share of the question's
words it contains (stemmed), and whether it holds the kind of fact the question asks for (a
number for "how many", a time for "when").  The best sentence is quoted; a second one too when
it scores nearly as well, from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rag.answering.verify import passage_sentences
from rag.core.shapes import Chunk
from rag.language.facts import facts
from rag.language.terms import coverage, query_terms, stems, terms
from rag.language.text import is_cjk
from rag.models.embedder import Embedder
from rag.retrieval.sentence_scores import (FACT_BONUS, SEMANTIC_WEIGHT, SEMANTIC_WEIGHT_CJK,
                                           asked_kinds, character_overlap, shown_kinds)

RANK_BONUS = 0.1  # divided by the passage's rank: retrieval's order breaks near-ties
SECOND_WITHIN = 0.9  # a second sentence is quoted when it scores this share of the best

@dataclass(frozen=True)
class Quote:
    passage: int  # 1-based passage number: the [n] of its citation
    start: int  # offsets in the source's extracted text
    end: int
    text: str
    score: float  # how well it answers the question: the blend of the parts below
    cosine: float = 0.0  # embedding similarity with the question
    words: float = 0.0  # share of the question's words it contains (stemmed; CJK: also pairs)
    kind: bool = False  # holds the kind of fact the question asks for


def best_sentences(question: str, passages: Sequence[Sequence[Chunk]], embedder: Embedder,
                   limit: int = 2, kinds: set[str] | None = None,
                   wording: str | None = None) -> list[Quote]:
    """The passages' sentences that answer `question` best, best first (at most `limit`).
    `kinds`: what the question asks for (a follow-up inherits its predecessor's), if not its own;
    `wording`: whose words count, if not the question's (a follow-up's own words: in "Which
    channel is it on?" the new word is "channel", not the subject the pronoun stood for)."""
    headings = {c.heading.strip().lower() for chunks in passages for c in chunks if c.heading}
    candidates = [c for c in passage_sentences(passages) if not _heading_like(c[3], headings)]
    if not candidates:
        return []
    qvec = embedder.embed([question], "query")[0]
    svecs = embedder.embed([c[3] for c in candidates])
    wanted = query_terms(wording or question)
    kinds = asked_kinds(question) if kinds is None else kinds
    # A date, number or code the question itself names ("once", one, names nothing in particular).
    named = {(f.kind, f.value) for f in facts(question) if f.value != "1"}
    naming: list[Quote] = []
    cjk = is_cjk(question)
    weight = SEMANTIC_WEIGHT_CJK if cjk else SEMANTIC_WEIGHT
    scored = []
    for (number, start, end, text), svec in zip(candidates, svecs):
        cosine = max(0.0, sum(a * b for a, b in zip(qvec, svec)))
        words = coverage(wanted, stems(terms(text)))
        if cjk:  # jieba may cut the question and the passage differently: characters too
            words = max(words, character_overlap(question, text))
        kind = bool(kinds & shown_kinds(text))
        same = bool(named) and bool(named & {(f.kind, f.value) for f in facts(text)})
        score = (weight * cosine + (1 - weight) * words + FACT_BONUS * (kind + same)
                 + RANK_BONUS / number)
        scored.append(Quote(number, start, end, text, score, cosine, words, kind))
        if same:  # states the very date, number or code the question names: always worth quoting
            naming.append(scored[-1])
    scored.sort(key=lambda q: q.score, reverse=True)
    best = [scored[0]]
    for quote in scored[1:]:
        close = quote.score >= SECOND_WITHIN * best[0].score
        if len(best) < limit and (close or quote in naming) and not _overlaps(quote, best):
            best.append(quote)
    return best


def _overlaps(quote: Quote, others: Sequence[Quote]) -> bool:
    return any(q.passage == quote.passage and q.start < quote.end and quote.start < q.end for q in others)


def _heading_like(text: str, headings: set[str]) -> bool:
    """A heading line ("Opening hours", "逾期与损坏") answers nothing: one of the chunks'
    headings, or a short line that does not end like a sentence."""
    text = text.strip()
    if text.lower() in headings:
        return True
    short = len(text.split()) <= 6 if text.isascii() else len(text) <= 12
    return short and not text.endswith(tuple(".!?;:。！？；：)）\"”」"))


def quoted_answer(question: str, quotes: Sequence[Quote],
                  lead: tuple[str, str] = ("The documents say: ", "文档中写道：")) -> str:
    """The answer text: the sentences quoted, each with its [n], after `lead` (English,
    Chinese: the one the question's language calls for)."""
    if is_cjk(question):
        return lead[1] + "".join(f"「{q.text.strip()}」[{q.passage}]" for q in quotes)
    return lead[0] + " ".join(f"\u201c{q.text.strip()}\u201d [{q.passage}]" for q in quotes)
