"""Extractive answers: the passages' own sentences that answer a question, quoted with citations.

Used when the model's reply cannot be trusted (no sentence of it is supported, or it states a
fact its passages do not), or always (ARCHIVIST_ANSWER_MODE=extractive).  Each sentence of the
passages is scored against the question: embedding similarity, the share of the question's
words it contains (stemmed), and whether it holds the kind of fact the question asks for (a
number for "how many", a time for "when").  The best sentence is quoted; a second one too when
it scores nearly as well, from elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.embedder import Embedder
from rag.facts import facts
from rag.terms import coverage, query_terms, stems, terms
from rag.text import is_cjk, sentence_spans
from rag.types import Chunk
from rag.verify import passage_sentences

SEMANTIC_WEIGHT = 0.5  # the rest is word overlap; CJK leans on words (the embedder is weak there)
SEMANTIC_WEIGHT_CJK = 0.3
FACT_BONUS = 0.15  # a sentence with the kind of fact asked for, and one with a fact the question names
RANK_BONUS = 0.1  # divided by the passage's rank: retrieval's order breaks near-ties
SECOND_WITHIN = 0.9  # a second sentence is quoted when it scores this share of the best

# What a question asks for, by its wording, and how a sentence shows it has one.
# "Free" answers a question about cost as well as an amount does.
_MONEY = re.compile(r"\d[\d,.]*\s*(euros?|pounds?|dollars?|yuan|元)|[€£$¥]\s*\d|[零一二两三四五六七八九十百千万]+元"
                    r"|\bfree\b|免费|不收费", re.I)
_DURATION = re.compile(r"(\d+|[一二两三四五六七八九十百]+|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
                       r"eleven|twelve|fifteen|twenty|thirty|sixty)\b)[\s-]*(个)?"
                       r"(working |business |工作)?(days?|hours?|minutes?|weeks?|months?|years?|天|日|小时|分钟|周|个月|月|年)", re.I)
_ASKS = [
    (re.compile(r"\b(how much|costs?|prices?|fees?|pay|paid|penalty|charge[sd]?|fined?)\b|钱|收费|费用|罚|赔|标准|补助|餐补", re.I),
     "money"),
    (re.compile(r"\bhow (long|soon|often)\b|\bin advance\b|多长时间|多久|多长|几天|期限|提前", re.I), "duration"),
    (re.compile(r"\b(when|what time|which day|what date|opening hours|open on)\b|几点|什么时候|何时|哪天|开门|关门",
                re.I), "when"),
    (re.compile(r"\bhow (many|big|large|deep|far|old)\b|\bnumber of\b|多少|几", re.I), "count"),
]


def asked_kinds(question: str) -> set[str]:
    return {kind for pattern, kind in _ASKS if pattern.search(question)}


def shown_kinds(text: str) -> set[str]:
    """The kinds of answer a sentence holds."""
    found = facts(text)
    kinds = {"count"} if any(f.kind in ("number", "percent") for f in found) else set()
    if any(f.kind in ("date", "time", "weekday") for f in found):
        kinds.add("when")
    if _MONEY.search(text):
        kinds.add("money")
    if _DURATION.search(text):
        kinds.add("duration")
    return kinds


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
    vectors = embedder.embed([question] + [c[3] for c in candidates])
    qvec, svecs = vectors[0], vectors[1:]
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
            words = max(words, _character_overlap(question, text))
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


def sentence_scores(question: str, chunks: Sequence[Chunk], embedder: Embedder) -> list[float]:
    """For each chunk, how well its best sentence answers `question`, scored as quotes are
    (similarity and the share of the question's words; CJK: also character pairs; a bonus for
    the kind of fact asked for), without the rank bonus: 0 for a chunk with no sentence.
    One embedding call for all of them."""
    headings = {c.heading.strip().lower() for c in chunks if c.heading}
    # Every chunk its own sentences (overlapping chunks share some), short lines included: an
    # option's one-line description ("-S 按文件大小排序") is often the answer.
    candidates = [(number, s, e, chunk.text[s:e]) for number, chunk in enumerate(chunks, start=1)
                  for s, e in sentence_spans(chunk.text)
                  if chunk.text[s:e].strip().lower() not in headings]
    best = [0.0] * len(chunks)
    if not candidates:
        return best
    vectors = embedder.embed([question] + [c[3] for c in candidates])
    qvec = vectors[0]
    wanted = query_terms(question)
    kinds = asked_kinds(question)
    cjk = is_cjk(question)
    weight = SEMANTIC_WEIGHT_CJK if cjk else SEMANTIC_WEIGHT
    for (number, _, _, text), svec in zip(candidates, vectors[1:]):
        cosine = max(0.0, sum(a * b for a, b in zip(qvec, svec)))
        words = coverage(wanted, stems(terms(text)))
        if cjk:
            words = max(words, _character_overlap(question, text))
        score = weight * cosine + (1 - weight) * words + FACT_BONUS * bool(kinds & shown_kinds(text))
        best[number - 1] = max(best[number - 1], score)
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


# Question characters that say nothing about the topic (question words, particles, pronouns).
_QUESTION_CHARS = set("的了吗呢吧啊么怎样如何什哪些是否能该要想请问几谁啥咋我你他她它们这那就都也还会可以在有")


def _character_overlap(question: str, text: str) -> float:
    """How much of a Chinese question's content `text` holds: the share of its character pairs
    (question words dropped) found there, or of its single characters, whichever is higher.
    Single characters carry a colloquial question to a formal sentence that shares no pair with
    it ("办借书证要钱吗" and "免费办理借阅证": 办, 借, 证); the pairs keep their edge where they
    match.  On the answer tuning questions the sentence holding the answer was picked for 35 of 40
    Chinese questions with characters, 28 with pairs alone."""
    chars = [ch for ch in question if is_cjk(ch) and ch not in _QUESTION_CHARS]
    if not chars:
        return 0.0
    pairs = {a + b for a, b in zip(chars, chars[1:])}
    paired = sum(1 for pair in pairs if pair in text) / len(pairs) if pairs else 0.0
    single = set(chars)
    return max(paired, sum(1 for ch in single if ch in text) / len(single))


def quoted_answer(question: str, quotes: Sequence[Quote],
                  lead: tuple[str, str] = ("The documents say: ", "文档中写道：")) -> str:
    """The answer text: the sentences quoted, each with its [n], after `lead` (English,
    Chinese: the one the question's language calls for)."""
    if is_cjk(question):
        return lead[1] + "".join(f"「{q.text.strip()}」[{q.passage}]" for q in quotes)
    return lead[0] + " ".join(f"\u201c{q.text.strip()}\u201d [{q.passage}]" for q in quotes)
