"""Citation verification: which passage, if any, supports each sentence of an answer.

Small models cite the wrong passage, forget markers and add claims of their own.  Each answer
sentence is compared with every sentence of the passages the model was given: cosine similarity
of their embeddings, blended with the share of the answer sentence's words found in the passage
sentence (jieba-segmented for Chinese).  The best passage sentence gives the support score and the
quote: its exact span in the source's extracted text.  A sentence that denies what that sentence
states, or the reverse, is unsupported however close it reads (rag/language/polarity.py).  Markers are then repaired: a [n] that
points at a passage not supporting the sentence is moved to the one that does, a supported
sentence without a marker gets one, and an unsupported sentence loses its markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.core.shapes import Chunk
from rag.language.facts import missing
from rag.language.polarity import negates
from rag.language.terms import STOPWORDS, terms
from rag.language.text import SENTENCE_END_CJK, is_cjk, sentence_spans
from rag.language.vocabulary import common
from rag.models.embedder import Embedder
from rag.retrieval.sentence_scores import stitch

_MARKER = re.compile(r"\s*\[(\d+)\]")
_TRAILING_PUNCT = re.compile(f"[.!?{SENTENCE_END_CJK}]+$")

# Support = weight x cosine + (1 - weight) x word overlap.  For Chinese the default embedding
# model is weak, so overlap of jieba-segmented words carries more of the verdict.
SEMANTIC_WEIGHT = 0.6
SEMANTIC_WEIGHT_CJK = 0.3
# Fragments with fewer content words than this ("2.", "```sql", "1.1.3.": numbers do not count)
# state nothing to check, and as quotes they would prove nothing: left alone, never quoted.
MIN_CONTENT_WORDS = 2


@dataclass(frozen=True)
class Support:
    """The verdict on one answer sentence."""

    text: str  # the sentence, markers removed
    supported: bool
    citation: int | None  # passage number supporting it, if any
    score: float  # blended support score, 0..1
    quote: str | None  # best-matching passage sentence
    quote_start: int | None  # its offsets in the source's extracted text
    quote_end: int | None
    unsupported: str | None = None  # why not, when not supported


def _with_marker(sentence: str, citation: int | None) -> str:
    """The sentence with its marker before the final punctuation: "Orange [2]." """
    if citation is None:
        return sentence
    punct = _TRAILING_PUNCT.search(sentence)
    body = sentence[:punct.start()] if punct else sentence
    return f"{body.rstrip()} [{citation}]{punct.group() if punct else ''}"


def _checkable(sentence: str) -> bool:
    return sum(1 for t in _content_terms(sentence) if not t.isdigit()) >= MIN_CONTENT_WORDS


def _content_terms(text: str) -> set[str]:
    return {t for t in terms(text) if t not in STOPWORDS}


def overlap(wanted: set[str], found: set[str]) -> float:
    """Share of the answer sentence's content words (`wanted`) among the passage sentence's."""
    return len(wanted & found) / len(wanted) if wanted else 0.0


class Verifier:
    def __init__(self, embedder: Embedder, threshold: float = 0.5,
                 threshold_cjk: float | None = None) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.threshold_cjk = threshold if threshold_cjk is None else threshold_cjk

    def check(self, answer: str, passages: Sequence[Sequence[Chunk]]) -> tuple[str, list[Support]]:
        """Verdicts for each sentence of `answer`, and the answer with its markers repaired.

        passages[i] holds the chunks the model read as passage [i + 1].  A sentence is supported
        by a passage that reads like it (similarity) and states each of its facts (numbers,
        dates, times, codes, names: rag/language/facts.py); a fact no passage states makes it
        unsupported, however similar it reads."""
        spans = [(s, e) for s, e in sentence_spans(answer) if _checkable(_MARKER.sub("", answer[s:e]))]
        sentences = [(answer[s:e], [int(n) for n in _MARKER.findall(answer[s:e])]) for s, e in spans]
        plain = [_MARKER.sub("", text).strip() for text, _ in sentences]
        candidates = passage_sentences(passages)  # (passage number, start, end, text)
        if not sentences:
            return answer, []
        vectors = self.embedder.embed(plain + [c[3] for c in candidates], "query")  # like with like
        answer_vecs, cand_vecs = vectors[:len(plain)], vectors[len(plain):]
        cand_terms = [_content_terms(c[3]) for c in candidates]

        texts = [stitch(chunks) for chunks in passages]
        verdicts: list[Support] = []
        repaired: list[str] = []
        for (text, cited), sentence, vec in zip(sentences, plain, answer_vecs):
            best_for: dict[int, tuple[float, tuple]] = {}
            wanted = _content_terms(sentence)
            weight = SEMANTIC_WEIGHT_CJK if is_cjk(sentence) else SEMANTIC_WEIGHT
            for cand, cvec, found in zip(candidates, cand_vecs, cand_terms):
                cosine = sum(a * b for a, b in zip(vec, cvec))
                score = weight * max(cosine, 0.0) + (1 - weight) * overlap(wanted, found)
                if score > best_for.get(cand[0], (-1.0,))[0]:
                    best_for[cand[0]] = (score, cand)
            verdict = self._verdict(sentence, cited, best_for, texts)
            verdicts.append(verdict)
            repaired.append(_with_marker(sentence, verdict.citation))
        for (start, end), text in reversed(list(zip(spans, repaired))):  # keep the layout around
            answer = answer[:start] + text + answer[end:]
        return answer, verdicts

    def _verdict(self, sentence: str, cited: list[int], best_for: dict[int, tuple[float, tuple]],
                 texts: Sequence[str]) -> Support:
        if not best_for:
            return Support(sentence, False, None, 0.0, None, None, None, "no passage to check it against")
        # Passages that state every fact of the sentence; without them similarity counts for nothing.
        lacking = {n: missing(sentence, texts[n - 1], common) for n in best_for}
        stating = [n for n in best_for if not lacking[n]]
        if not stating:
            number = next((n for n in cited if n in best_for), max(best_for, key=lambda n: best_for[n][0]))
            facts = ", ".join(f"'{fact}'" for fact in lacking[number])
            score = best_for[number][0]
            return Support(sentence, False, None, round(score, 3), None, None, None,
                           f"{facts} {'is' if len(lacking[number]) == 1 else 'are'} not in passage [{number}]")
        # Prefer a passage the model cited when it supports the sentence about as well as the best.
        best_number = max(stating, key=lambda n: best_for[n][0])
        bar = self.threshold_cjk if is_cjk(sentence) else self.threshold
        for number in cited:
            if number in stating and best_for[number][0] >= max(bar, best_for[best_number][0] - 0.05):
                best_number = number
                break
        score, (_, start, end, text) = best_for[best_number]
        if score < bar:
            return Support(sentence, False, None, round(score, 3), None, None, None,
                           f"no passage says this (best support {score:.2f} < {bar})")
        if negates(sentence) != negates(text):  # "does not mention a discount" vs "a discount of 2%"
            said = "denies what" if negates(sentence) else "affirms what"
            return Support(sentence, False, None, round(score, 3), None, None, None,
                           f"it {said} the closest sentence of passage [{best_number}] "
                           f"{'states' if negates(sentence) else 'denies'}")
        return Support(sentence, True, best_number, round(score, 3), text, start, end)


def passage_sentences(passages: Sequence[Sequence[Chunk]]) -> list[tuple[int, int, int, str]]:
    """(passage number, start, end, text) of every checkable sentence of the passages, each once
    (overlapping chunks repeat sentences), with offsets in the source's extracted text."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for number, chunks in enumerate(passages, start=1):
        for chunk in chunks:
            for s, e in sentence_spans(chunk.text):
                key = (chunk.source, chunk.start + s, chunk.start + e)
                if key not in seen and _checkable(chunk.text[s:e]):
                    seen.add(key)
                    out.append((number, chunk.start + s, chunk.start + e, chunk.text[s:e]))
    return out
