"""Do the retrieved passages answer the question?  Decided from evidence, before the model runs.

Signals measured per question, weighed by a logistic model fitted on the tuning questions
(bench/calibrate_refusals.py; weights and bars in RetrievalConfig):

- the best *sentence* of the passages for the question (rag/answering/extractive.py): its
  similarity, the share of the question's words in it (stemmed), whether it holds the kind of fact
  asked for (a number for "how many", a time for "when"): a passage on the right subject that does
  not say the thing asked scores low here;
- the best passage's cosine similarity;
- how far that passage stands above the question's other candidates (z-score): relative, so it
  carries over between a short handbook and a thousand-page manual.

A question naming something no document contains (rag.language.terms.names) is refused before this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from rag.answering.extractive import Quote, best_sentences
from rag.answering.followup import FollowUp
from rag.core.retrieval_section import RetrievalConfig
from rag.core.shapes import Chunk
from rag.models.embedder import Embedder
from rag.retrieval.retriever import Retrieval


@dataclass(frozen=True)
class Evidence:
    probability: float  # that the passages answer the question, 0..1
    quotes: list[Quote]  # the passages' best sentences for it, best first
    dense_best: float
    dense_z: float

    @property
    def sentence_score(self) -> float:
        return self.quotes[0].score if self.quotes else 0.0

    def explain(self) -> str:
        return (f"evidence {self.probability:.2f}: best sentence match {self.sentence_score:.2f}, "
                f"best passage similarity {self.dense_best:.2f}")


class EvidenceTest:
    def __init__(self, embedder: Embedder, config: RetrievalConfig) -> None:
        self.embedder = embedder
        self.config = config

    def weigh(self, follow: FollowUp, kinds: set[str] | None, retrieval: Retrieval,
              passages: Sequence[Sequence[Chunk]], cjk: bool) -> Evidence:
        """`follow`: the question, made to stand alone; `passages`: the chunks of each retrieved
        passage, in rank order."""
        quotes = best_sentences(follow.focus, passages, self.embedder, kinds=kinds,
                                wording=follow.wording)
        probability = self.probability(quotes[0] if quotes else None, retrieval.dense_best,
                                       retrieval.dense_z, cjk)
        quotes = self.answering(quotes, retrieval.dense_best, retrieval.dense_z, cjk)
        return Evidence(probability, quotes, retrieval.dense_best, retrieval.dense_z)

    def probability(self, quote: Quote | None, dense_best: float, dense_z: float, cjk: bool) -> float:
        """The evidence that the passages answer the question, were `quote` their best sentence."""
        weights = self.config.evidence_weights_cjk if cjk else self.config.evidence_weights
        signals = (quote.cosine if quote else 0.0, quote.words if quote else 0.0,
                   float(quote.kind) if quote else 0.0, dense_best, dense_z, 1.0)
        return 1.0 / (1.0 + math.exp(-sum(w * v for w, v in zip(weights, signals))))

    def answering(self, quotes: Sequence[Quote], dense_best: float, dense_z: float,
                  cjk: bool) -> list[Quote]:
        """The best sentence, and each other that would be evidence enough on its own: a quote
        carries only sentences that answer (asked how many boats the club owns, the sentence
        after the right one, on the joining fee, scored within 10% of it on shared words and a
        number, but is no answer by itself)."""
        bar = self.bar(cjk)
        return list(quotes[:1]) + [q for q in quotes[1:]
                                   if self.probability(q, dense_best, dense_z, cjk) >= bar]

    def bar(self, cjk: bool) -> float:
        return self.config.min_evidence_cjk if cjk else self.config.min_evidence
