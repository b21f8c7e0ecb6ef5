"""The retrieval section of the settings: hybrid ranking, the relevance gate and the evidence test,
the largest section and the one retuned for each embedding model (rag/core/model_defaults.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rag.core.sections import Section
from rag.core.values import string_list


class RetrievalConfig(Section):
    """Hybrid ranking and the relevance gate (rag/retrieval/retriever.py); tuned on tests/eval with
    all-MiniLM-L6-v2: retune them for another embedding model."""

    retrieval_candidates: int = Field(
        50, ge=1, description="Candidates taken from each side (dense, lexical) before fusion.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal rank fusion constant: 1/(rrf_k + rank). "
                       "10 beats the customary 60 on tests/eval (Chinese MRR 0.91 against 0.86): "
                       "the top of each list matters most.")
    lexical_weight: float = Field(
        0.5, ge=0.0, description="Weight of the lexical (BM25) ranking in fusion; dense weighs 1. "
        "On tests/eval (English) 0.5 gives the best MRR; 1.0 loses 0.005, 0 loses 0.04.")
    lexical_weight_cjk: float = Field(
        2.0, ge=0.0, description="Lexical weight for questions written mostly in Chinese or "
        "Japanese, where the default embedding model is weak and exact terms carry the search "
        "(tests/eval Chinese MRR: 0.48 dense-only, 0.91 with this weight).")
    fusion: Literal["rrf", "score"] = Field(
        "rrf", description="How the dense and lexical rankings are merged for English (non-CJK) "
        "questions: 'rrf' (reciprocal rank fusion, rrf_k and lexical_weight) or 'score' (weighted "
        "sum of each side's scores scaled to 0..1 over its candidates, score_lexical_weight).")
    fusion_cjk: Literal["rrf", "score"] = Field("rrf", description="fusion for CJK questions.")
    score_lexical_weight: float = Field(
        0.5, ge=0.0, description="In score fusion, the weight of the lexical side's scaled BM25; "
        "the dense side's scaled cosine weighs 1.")
    score_lexical_weight_cjk: float = Field(
        1.5, ge=0.0, description="score_lexical_weight for CJK questions.")
    rescore_top: int = Field(
        0, ge=0, description="Re-rank this many of the best fused candidates by their best "
        "sentence for the question (its similarity and its share of the question's words, as "
        "quotes are chosen): the chunk that says the thing asked rises to the top. 0: off.")
    rescore_weight: float = Field(
        0.0, ge=0.0, description="How much the best sentence's score counts against the fused "
        "score (both scaled to 0..1 over the re-ranked candidates), English questions.")
    rescore_weight_cjk: float = Field(0.0, ge=0.0, description="rescore_weight for CJK questions.")
    language_offset: float = Field(
        0.0, ge=0.0, le=1.0, description="Also search the passages in the script the question "
        "is not written in (Chinese/Japanese or other), adding this to their cosines before the "
        "lists merge: a multilingual model rates any text in the question's language above the "
        "passage in the other that answers it. 0: one search, as a one-language model needs. "
        "Costs a vector query filtered by script (README: p95 135 ms at 100k chunks on 2 cores).")
    language_offset_cjk: float = Field(0.0, ge=0.0, le=1.0,
                                       description="language_offset for CJK questions.")
    cross_language_slot: bool = Field(
        False, description="For a Chinese or Japanese question with Latin-script words in it "
        "(SELECT FOR UPDATE, pg_dump): search those words alone and give the best passage in "
        "another script the 5th place unless it is already in the top 5. A multilingual model "
        "rates the question's own language far above the English page that answers it; the "
        "question's own words find that page. One more search for such questions.")
    query_expansion: Literal["off", "cjk", "all"] = Field(
        "off", description="Search the names the chat model says an expert would look up with "
        "the question (rag/retrieval/expansion.py): 'cjk' for Chinese or Japanese questions, "
        "'all' for every one. Off: the bundled 135M model makes search worse (README: Query expansion).")
    file_support: float = Field(
        0.3, ge=0.0, description="Share of a file's other matching chunks added to each of its "
        "chunks: a file that matches in several places is more likely the one that answers "
        "(tests/eval: hit@1 +0.02 English and Chinese; 0.6 starts to hurt hit@5).")
    max_per_file: int = Field(
        1, ge=1, description="Hits one file may take before other files get a turn (unless its "
        "next hit scores 1.5 times the next other file's). 2 costs 0.04-0.07 English hit@5 on "
        "tests/eval; widening gives the model the surrounding text of a hit anyway.")
    min_score: float = Field(
        0.52, ge=-1.0, le=1.0,
        description="Cosine similarity from which a passage counts as relevant to an English "
        "(non-CJK) question: the relevant passages (or, if none is, the one holding the best "
        "sentence) are what the model reads. Whether the question is answered at all is the "
        "evidence test (min_evidence).")
    min_score_cjk: float = Field(
        0.45, ge=-1.0, le=1.0,
        description="min_score for questions written mostly in Chinese or Japanese: the default "
        "embedding model barely knows Chinese, so its cosines run lower.")
    min_lexical: float = Field(
        0.75, ge=0.0, le=1.0,
        description="A passage containing at least this share of an English question's words "
        "(stemmed) counts as relevant even when its cosine similarity is below min_score.")
    min_lexical_cjk: float = Field(
        0.45, ge=0.0, le=1.0, description="min_lexical for CJK questions (words from jieba "
        "segmentation).")
    evidence_weights: tuple[float, float, float, float, float, float] = Field(
        (9.9, 1.36, 0.53, 3.92, 0.04, -7.72),
        description="How the evidence that the documents answer an English question is weighed: "
        "logistic weights of the passages' best sentence for it (its cosine similarity with the "
        "question, the share of the question's words in it, whether it holds the kind of fact "
        "asked for), of the best passage's cosine similarity and of how far that passage stands "
        "above the question's other candidates (z-score), then the bias. Fitted by "
        "`bench/calibrate_refusals.py` on the tuning questions of tests/answers and tests/eval.")
    evidence_weights_cjk: tuple[float, float, float, float, float, float] = Field(
        (1.27, 4.51, 2.14, 5.38, 0.63, -7.95), description="evidence_weights for CJK questions.")
    min_evidence: float = Field(
        0.485, ge=0.0, le=1.0,
        description="A question whose evidence (0..1, see evidence_weights) is below this is "
        "refused without calling the model. Chosen on the tuning questions to wrongly refuse at "
        "most 10% of the answerable ones on either corpus (Debian manuals: 9%, short documents: "
        "8%); it refuses 100% and 86% of their unanswerable ones.")
    min_evidence_cjk: float = Field(
        0.3, ge=0.0, le=1.0,
        description="min_evidence for CJK questions (tuning: 10% and 8% wrongly refused, but only "
        "50% and 40% of the unanswerable refused: without an embedding model that knows Chinese, "
        "a question on a neighbouring subject reads as close as one the text answers).")
    refuse_unknown_names: bool = Field(
        True, description="Refuse, without calling the model, a question naming something no "
        "indexed text contains, however similar the nearest passages read: an identifier "
        "(`pg_stat_io`, `mongod.conf`), CamelCase (`BitLocker`), an uncommon acronym (`SSO`, "
        "not `OK`), a capitalised word that is not a common word (`Patroni`), or a Latin word in "
        "a Chinese question (`netplan`). A capitalised common word (`Christmas`) is not a name; "
        "see rag.language.terms.names.")

    _weights = field_validator("evidence_weights", "evidence_weights_cjk", mode="before")(string_list)
