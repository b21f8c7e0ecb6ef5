"""How well a passage's sentences answer a question, and the text of a passage.

Shared by ranking (rag/retrieval/retriever.py breaks near-ties by the best sentence of each
hit), quotes (rag/answering/extractive.py) and citation checks (rag/answering/verify.py), so
all three score a sentence the same way: embedding similarity, the share of the question's words
it contains (stemmed; Chinese: also its characters), and whether it holds the kind of fact the
question asks for (a number for "how many", a time for "when").
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.core.shapes import Chunk
from rag.language.facts import facts
from rag.language.terms import coverage, query_terms, stems, terms
from rag.language.text import is_cjk, sentence_spans
from rag.models.embedder import Embedder

SEMANTIC_WEIGHT = 0.5  # the rest is word overlap; CJK leans on words (the embedder is weak there)
SEMANTIC_WEIGHT_CJK = 0.3
FACT_BONUS = 0.15  # a sentence with the kind of fact asked for, and one with a fact the question names

# What a question asks for, by its wording, and how a sentence shows it has one.
# "Free" answers a question about cost as well as an amount does.
_MONEY = re.compile(r"\d[\d,.]*\s*(euros?|pounds?|dollars?|yuan|元)|[€£$¥]\s*\d|[零一二两三四五六七八九十百千万]+元"
                    r"|\bfree\b|免费|不收费", re.I)
_DURATION = re.compile(r"(\d+|[一二两三四五六七八九十百]+|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
                       r"eleven|twelve|fifteen|twenty|thirty|sixty)\b)[\s-]*(个)?"
                       r"(working |business |工作)?(days?|hours?|minutes?|weeks?|months?|years?|天|日|小时|分钟|周|个月|月|年)", re.I)
_COMPOUND = re.compile(r"\b(one|two|three|single|double)-\w+", re.I)
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
    """The kinds of answer a sentence holds.  An amount of money ("50 euros") answers "how much",
    not "how many", and a number word in a compound ("a one-time fee") counts nothing."""
    found = facts(text)
    counted = facts(_COMPOUND.sub(" ", _MONEY.sub(" ", text)))
    kinds = {"count"} if any(f.kind in ("number", "percent") for f in counted) else set()
    if any(f.kind in ("date", "time", "weekday") for f in found):
        kinds.add("when")
    if _MONEY.search(text):
        kinds.add("money")
    if _DURATION.search(text):
        kinds.add("duration")
    return kinds


# Question characters that say nothing about the topic (question words, particles, pronouns).
_QUESTION_CHARS = set("的了吗呢吧啊么怎样如何什哪些是否能该要想请问几谁啥咋我你他她它们这那就都也还会可以在有")


def character_overlap(question: str, text: str) -> float:
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
    qvec = embedder.embed([question], "query")[0]
    vectors = [qvec] + embedder.embed([c[3] for c in candidates])
    wanted = query_terms(question)
    kinds = asked_kinds(question)
    cjk = is_cjk(question)
    weight = SEMANTIC_WEIGHT_CJK if cjk else SEMANTIC_WEIGHT
    for (number, _, _, text), svec in zip(candidates, vectors[1:]):
        cosine = max(0.0, sum(a * b for a, b in zip(qvec, svec)))
        words = coverage(wanted, stems(terms(text)))
        if cjk:
            words = max(words, character_overlap(question, text))
        score = weight * cosine + (1 - weight) * words + FACT_BONUS * bool(kinds & shown_kinds(text))
        best[number - 1] = max(best[number - 1], score)
    return best


def stitch(chunks: Sequence[Chunk]) -> str:
    """Join chunks of one file (sorted by offset) into one text without repeating overlaps."""
    text, end = "", None
    for chunk in sorted(chunks, key=lambda c: c.start):
        if end is None:
            text, end = chunk.text, chunk.end
        elif chunk.end > end:
            if chunk.start >= end:
                text += "\n\n" + chunk.text
            else:
                text += chunk.text[end - chunk.start:]
            end = chunk.end
    return text
