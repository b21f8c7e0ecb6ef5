"""Hybrid retrieval: dense (Chroma) and lexical (BM25) candidates fused by reciprocal rank.

Then near-duplicates are collapsed (the same paragraph in two files, overlapping chunks of one
file) and one file may not fill every slot unless nothing else is close.  For answering, each hit
is widened with its neighbouring text (small-to-big), merging hits that meet so no text is sent
twice.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Sequence

from wcmatch import glob

from rag.core.background import Background
from rag.core.retrieval_section import RetrievalConfig
from rag.core.shapes import Chunk, Hit
from rag.language.terms import coverage, names, query_terms, search_terms, stems
from rag.language.text import is_cjk
from rag.language.vocabulary import common
from rag.models.embedder import Embedder
from rag.retrieval.sentence_scores import sentence_scores, stitch
from rag.storage.chunk_store import SCRIPTS, ChunkStore
from rag.storage.lexical import LexicalHit, LexicalIndex


# The place (1-based) an other-language passage is given among a Chinese question's hits, and
# how many hits of its Latin words are looked through for one (rag/core/model_defaults.py).
CROSS_SLOT, CROSS_CANDIDATES = 5, 10
# All of them: in a Chinese sentence, "FOR" is part of SELECT ... FOR UPDATE.
LATIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{2,}")


@dataclass(frozen=True)
class SearchFilter:
    """Restrict a search to some files: a path prefix or glob, and/or file types."""

    path: str | None = None  # "reports/" (prefix) or "reports/**/*.pdf", "**/*handbook*" (glob)
    types: tuple[str, ...] = ()  # extensions, with or without the dot: ("pdf", ".docx")

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(t.lower().lstrip(".") for t in self.types if t))

    @property
    def active(self) -> bool:
        return bool(self.path) or bool(self.types)

    def matches(self, source: str) -> bool:
        if self.types and source.rsplit(".", 1)[-1].lower() not in self.types:
            return False
        if self.path:
            if any(ch in self.path for ch in "*?["):
                return self._glob.match(source)
            return source.startswith(self.path)
        return True

    @cached_property
    def _glob(self) -> glob.WcMatcher:
        # Sources are stored with "/" on every platform, so they are matched the Unix way (and so
        # case-sensitively): `*` stays within one folder, `**` spans any number of them, none
        # included.  No BRACE: an oversized {a,b}{c,d}... would raise past the HTTP layer's 422s.
        return glob.compile(self.path, flags=glob.FORCEUNIX | glob.GLOBSTAR)


# A crowded file's chunk still goes first if it scores this much more than the next other file's.
CLEARLY_BEST = 1.5
# File support does not lift a chunk over one whose cosine is this much higher and that the keyword
# side also ranks above it (retriever._below_dominators).
CLEARLY_CLOSER = 0.1
# Passages whose word sets overlap this much (Jaccard) are the same passage shown twice.
DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    dense_best: float  # the best cosine similarity among the dense candidates
    dense_z: float  # how far it stands above the others, in standard deviations


# With fewer candidates than this there is no spread to stand out from (a folder of one or two
# documents): the z-score is taken as typical, the median of the tuning questions'.
_FEW_CANDIDATES = 12
TYPICAL_Z = 3.3


def _standing(scores: Sequence[float]) -> tuple[float, float]:
    """(best, z-score of the best) of a question's dense candidate scores: a passage that stands
    out from the rest is better evidence than one that merely scores high."""
    if not scores:
        return 0.0, 0.0
    if len(scores) < _FEW_CANDIDATES:
        return max(scores), TYPICAL_Z
    spread = statistics.pstdev(scores) or 1.0
    return max(scores), (max(scores) - statistics.median(scores)) / spread


@dataclass(frozen=True)
class Passage:
    """What the model reads for one hit: the hit widened with neighbouring text of its file."""

    hit: Hit
    text: str
    start: int
    end: int
    chunks: tuple[Chunk, ...] = ()  # what `text` was stitched from, in order


class HybridRetriever:
    def __init__(self, store: ChunkStore, lexical: LexicalIndex, embedder: Embedder,
                 config: RetrievalConfig) -> None:
        self.store = store
        self.lexical = lexical
        self.embedder = embedder
        self.config = config

    def search(self, question: str, top_k: int, filt: SearchFilter | None = None,
               expansion: str = "") -> list[Hit]:
        return self.retrieve(question, top_k, filt, expansion).hits

    def retrieve(self, question: str, top_k: int, filt: SearchFilter | None = None,
                 expansion: str = "") -> Retrieval:
        """The ranked hits, and how the best dense candidate stands among all of them.
        `expansion` (rag.retrieval.expansion): words searched with the question, on both sides; the
        hits' cosines, their relevance and the dense standing are still the question's own, so the
        evidence test reads the same signals with or without it."""
        cfg = self.config
        sources = None
        if filt is not None and filt.active:
            sources = sorted(s for s in self.lexical.sources() if filt.matches(s))
        searched = f"{question} {expansion}" if expansion else question
        cjk = is_cjk(question)
        # A Chinese question's Latin words, searched alone beside it (cross_language_slot).
        latin = " ".join(LATIN_WORD.findall(question)) if cjk and cfg.cross_language_slot else ""
        crossing = Background(self.retrieve, latin, CROSS_CANDIDATES, filt) if latin else None
        # The keyword search runs beside the question's embedding and the vector search: both
        # spend their time in C with the GIL released (SQLite, ONNX Runtime, Chroma), so on two
        # cores a search takes the longer of the two instead of their sum.
        lexical_search = Background(self.lexical.search, search_terms(searched),
                                    cfg.retrieval_candidates, sources)
        if expansion:
            vector, expanded = self.embedder.embed([question, searched], "query")
            dense, _ = self._dense(expanded, sources, cjk)
            _, own = self._dense(vector, sources, cjk)
        else:
            vector = self.embedder.embed([question], "query")[0]
            dense, own = self._dense(vector, sources, cjk)
        qterms = query_terms(question)
        lexical = lexical_search.result()

        gate = (cfg.min_score_cjk, cfg.min_lexical_cjk) if cjk else (cfg.min_score, cfg.min_lexical)
        if cfg.refuse_unknown_names and self.unknown_names(question):  # its subject is absent, however close some text reads
            gate = (float("inf"), float("inf"))
        if (cfg.fusion_cjk if cjk else cfg.fusion) == "score":
            fused = self._fuse_scores(dense, lexical, cfg.score_lexical_weight_cjk if cjk
                                      else cfg.score_lexical_weight)
        else:
            fused = self._fuse_ranks(dense, lexical, cfg.lexical_weight_cjk if cjk else cfg.lexical_weight)
        final = self._with_file_support(fused, dense, lexical)
        shortlist = sorted(final, key=final.__getitem__, reverse=True)[: max(top_k * 4, 20)]

        scores = {h.chunk.chunk_id: h.score for h in own}
        # Chunk and terms for dense and lexical hits alike, in one read of the lexical index,
        # which ingest switches one file per transaction: so each file's hits are all of one
        # version, and a Chroma hit of a version on its way in or out (not held here) is dropped.
        stored = self.lexical.chunks(shortlist)
        missing = [cid for cid in shortlist if cid not in scores]
        for cid, vec in self.store.vectors(missing).items():  # found by the keyword side or the expansion only: the question's own cosine
            scores[cid] = sum(a * b for a, b in zip(vector, vec))
        candidates = []
        for cid in shortlist:
            if cid in stored and cid in scores:
                chunk, chunk_terms = stored[cid]
                candidates.append((self._judge(Hit(chunk, scores[cid]), qterms, stems(chunk_terms), gate),
                                   set(chunk_terms), final[cid]))
        weight = cfg.rescore_weight_cjk if cjk else cfg.rescore_weight
        if cfg.rescore_top and weight:
            candidates = self._rescore(question, candidates, cfg.rescore_top, weight)
        hits = self._select(candidates, top_k)
        if crossing is not None:
            hits = self._with_other_language(crossing.result().hits, hits, top_k, vector, qterms,
                                             gate)
        return Retrieval(hits, *_standing([h.score for h in own]))

    def _with_other_language(self, crossing: list[Hit], hits: list[Hit], top_k: int,
                             vector: Sequence[float], qterms: Sequence[str],
                             gate: tuple[float, float]) -> list[Hit]:
        """`hits` with the best of `crossing` (the hits of the question's Latin words, searched
        alone) that is not in Chinese or Japanese in place CROSS_SLOT, unless the top already has
        it.  Judged like any hit by the question as asked (its cosine, its words), so the
        relevance gate and the evidence test read what they read without it."""
        found = next((h for h in crossing if not is_cjk(h.chunk.text)), None)
        place = min(CROSS_SLOT, top_k) - 1
        if found is None or found.chunk.chunk_id in {h.chunk.chunk_id for h in hits[:place + 1]}:
            return hits
        cid = found.chunk.chunk_id
        stored, vectors = self.lexical.chunks([cid]), self.store.vectors([cid])
        if cid not in stored or cid not in vectors:
            return hits
        chunk, chunk_terms = stored[cid]
        score = sum(a * b for a, b in zip(vector, vectors[cid]))
        judged = self._judge(Hit(chunk, score), qterms, stems(chunk_terms), gate)
        rest = [h for h in hits if h.chunk.chunk_id != cid]
        return (rest[:place] + [judged] + rest[place:])[:top_k]

    def _rescore(self, question: str, candidates: list[tuple[Hit, set[str], float]], top: int,
                 weight: float) -> list[tuple[Hit, set[str], float]]:
        """The best `top` candidates re-ranked by fused score + weight * their best sentence's
        score for the question (rag/retrieval/sentence_scores.py: similarity and words, as quotes
        are chosen), both scaled to 0..1 over those candidates; the rest keep their places after."""

        head, tail = candidates[:top], candidates[top:]
        if len(head) < 2:
            return candidates
        best = sentence_scores(question, [hit.chunk for hit, _, _ in head], self.embedder)
        fused = _scaled([score for _, _, score in head])
        sentences = _scaled(best)
        order = sorted(range(len(head)), key=lambda i: fused[i] + weight * sentences[i], reverse=True)
        # Scores stay comparable with the tail's (crowding compares them): keep the head's in order.
        ranked = sorted((score for _, _, score in head), reverse=True)
        return [(head[i][0], head[i][1], ranked[n]) for n, i in enumerate(order)] + tail

    def unknown_names(self, question: str) -> list[str]:
        """Names the question asks about (identifiers, product names) that no indexed text
        contains: `pg_stat_io` near PostgreSQL's statistics pages is still a question the
        documents cannot answer."""
        return self.lexical.absent(names(question, common))

    def _dense(self, vector: Sequence[float], sources: Sequence[str] | None,
               cjk: bool) -> tuple[list[Hit], list[Hit]]:
        """The dense candidates: (as ranked for fusion, with their own cosines).

        With a language offset, the passages in the script the question is not written in are
        also searched apart, and their cosines raised by the offset before the two lists merge:
        multilingual-e5 rates every English passage above the Chinese one that answers an English
        question (tests/eval/questions.cross.*), while within one script its ranking holds.  The
        question's own script is the plain search (its top is that script anyway): one filtered
        query, not two, as a filter costs Chroma tens of milliseconds per 100k chunks."""
        k = self.config.retrieval_candidates
        offset = self.config.language_offset_cjk if cjk else self.config.language_offset
        plain = self.store.query(vector, k, sources)
        if not offset or not self.store.tags_scripts:
            return plain, plain
        other = self.store.query(vector, k, sources, script=SCRIPTS[1] if cjk else SCRIPTS[0])
        own = {h.chunk.chunk_id: h for h in plain + other}
        raised = {h.chunk.chunk_id: Hit(h.chunk, h.score + offset) for h in other}
        ranked = sorted({**{h.chunk.chunk_id: h for h in plain}, **raised}.values(),
                        key=lambda h: h.score, reverse=True)[:k]
        return ranked, [own[h.chunk.chunk_id] for h in ranked]

    def _fuse_ranks(self, dense: Sequence[Hit], lexical: Sequence[LexicalHit],
                    lexical_weight: float) -> dict[str, float]:
        """Reciprocal rank fusion of the two rankings, chunk by chunk."""
        k = self.config.rrf_k
        fused: dict[str, float] = {}
        for rank, hit in enumerate(dense):
            fused[hit.chunk.chunk_id] = 1.0 / (k + rank + 1)
        for rank, lhit in enumerate(lexical):
            fused[lhit.chunk_id] = fused.get(lhit.chunk_id, 0.0) + lexical_weight / (k + rank + 1)
        return fused

    @staticmethod
    def _fuse_scores(dense: Sequence[Hit], lexical: Sequence[LexicalHit],
                     lexical_weight: float) -> dict[str, float]:
        """Weighted score fusion (Bruch et al., 2022): each side's scores scaled to 0..1 over its
        candidates (min-max), the lexical side's weighted; a chunk only one side found gets 0 from
        the other."""
        fused: dict[str, float] = {}
        for hit, value in zip(dense, _scaled([h.score for h in dense])):
            fused[hit.chunk.chunk_id] = value
        for lhit, value in zip(lexical, _scaled([-h.bm25 for h in lexical])):
            fused[lhit.chunk_id] = fused.get(lhit.chunk_id, 0.0) + lexical_weight * value
        return fused

    def _with_file_support(self, fused: dict[str, float], dense: Sequence[Hit],
                           lexical: Sequence[LexicalHit]) -> dict[str, float]:
        """Plus file support: a file with several matching chunks is more likely the one that
        answers, so each chunk gets a share of its file's other evidence.  Support reorders
        chunks whose evidence is mixed; it never lifts one above a chunk that beats it in both
        rankings (a one-line note that is the best match by meaning and by words stays above a
        long handbook's many half-matches)."""
        source_of = {hit.chunk.chunk_id: hit.chunk.source for hit in dense}
        source_of.update((lhit.chunk_id, lhit.source) for lhit in lexical)
        per_file: dict[str, list[float]] = {}
        for cid, score in fused.items():
            per_file.setdefault(source_of[cid], []).append(score)
        support = {src: self.config.file_support * sum(sorted(scores, reverse=True)[1:4])
                   for src, scores in per_file.items()}
        boosted = {cid: score + support[source_of[cid]] for cid, score in fused.items()}
        return _below_dominators(fused, boosted, dense, lexical)

    @staticmethod
    def _judge(hit: Hit, qterms: Sequence[str], chunk_stems: set[str],
               gate: tuple[float, float]) -> Hit:
        """Relevant when either the cosine or the share of question words found passes its bar."""
        lex = coverage(qterms, chunk_stems)
        min_score, min_lexical = gate
        relevant = hit.score >= min_score or lex >= min_lexical
        return replace(hit, lexical=lex, relevant=relevant)

    def _select(self, candidates: list[tuple[Hit, set[str], float]], top_k: int) -> list[Hit]:
        """Drop near-duplicates; then a file that already has max_per_file hits waits until other
        files have had their turn, unless its next chunk scores clearly_best times the next
        other-file candidate."""
        kept: list[tuple[Hit, set[str], float]] = []
        for hit, words, score in candidates:
            if not any(self._same_passage(hit.chunk, other.chunk, words, other_words)
                       for other, other_words, _ in kept):
                kept.append((hit, words, score))
        chosen: list[Hit] = []
        per_file: dict[str, int] = {}
        waiting: list[tuple[Hit, float]] = []
        for hit, _, score in kept:
            while waiting and waiting[0][1] >= CLEARLY_BEST * score:
                chosen.append(waiting.pop(0)[0])
            if per_file.get(hit.chunk.source, 0) < self.config.max_per_file:
                chosen.append(hit)
                per_file[hit.chunk.source] = per_file.get(hit.chunk.source, 0) + 1
            else:
                waiting.append((hit, score))
        return (chosen + [hit for hit, _ in waiting])[:top_k]

    def _same_passage(self, a: Chunk, b: Chunk, a_words: set[str], b_words: set[str]) -> bool:
        if a.content_hash == b.content_hash:
            return True
        if a.source == b.source and a.start < b.end and b.start < a.end:
            overlap = min(a.end, b.end) - max(a.start, b.start)
            return overlap > 0.5 * min(a.end - a.start, b.end - b.start)
        union = a_words | b_words
        return bool(union) and len(a_words & b_words) / len(union) >= DUPLICATE_JACCARD

    def widen(self, hits: Sequence[Hit], neighbours: int) -> list[Passage]:
        """Each hit with `neighbours` chunks either side.  Hits of one file whose widened spans
        meet become one passage, kept at the place of the better hit."""
        groups: list[tuple[Hit, int, int]] = []
        for hit in hits:
            around = self.lexical.neighbours(hit.chunk, neighbours, neighbours) or [hit.chunk]
            start, end = around[0].start, around[-1].end
            for i, (first, s, e) in enumerate(groups):
                if first.chunk.source == hit.chunk.source and start <= e and s <= end:
                    groups[i] = (first, min(s, start), max(e, end))
                    break
            else:
                groups.append((hit, start, end))
        passages = []
        for hit, s, e in groups:
            chunks = tuple(self.lexical.chunks_in_span(hit.chunk, s, e)) or (hit.chunk,)
            passages.append(Passage(hit, stitch(chunks), s, e, chunks))
        return passages


def _below_dominators(fused: dict[str, float], boosted: dict[str, float], dense: Sequence[Hit],
                      lexical: Sequence[LexicalHit]) -> dict[str, float]:
    """`boosted`, each chunk capped just below every chunk that beats it clearly by meaning (a
    cosine at least CLEARLY_CLOSER higher) and also by words (ranked above it by the keyword
    side, which ranks what it did not find last).  Such a chunk always has the higher fused
    score, so taking chunks in fused order caps every dominator before the chunks it dominates.
    Ranks alone are not enough: on a large corpus the dense candidates lie within hundredths of
    each other, and a chunk the keyword side missed is not clearly worse for that."""
    cosine = {hit.chunk.chunk_id: hit.score for hit in dense}
    lexical_rank = {hit.chunk_id: n for n, hit in enumerate(lexical)}
    floor, last = min(cosine.values(), default=0.0), len(lexical)
    capped: dict[str, float] = {}
    done: list[tuple[float, int, str]] = []
    for cid in sorted(fused, key=fused.__getitem__, reverse=True):
        cos, rank = cosine.get(cid, floor), lexical_rank.get(cid, last)
        score = boosted[cid]
        for other_cos, other_rank, other in done:
            if other_cos >= cos + CLEARLY_CLOSER and other_rank < rank and capped[other] <= score:
                score = capped[other] - 1e-9
        capped[cid] = score
        done.append((cos, rank, cid))
    return capped


def _scaled(values: Sequence[float]) -> list[float]:
    """Min-max scaled to 0..1 (all 1 when they are equal)."""
    if not values:
        return []
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 1.0 for v in values]
