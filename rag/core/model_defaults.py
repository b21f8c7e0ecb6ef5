"""Defaults tuned for one embedding model, in place of the sections' own where the settings give
no value of their own.

The relevance gate, the evidence test, fusion weights and the support threshold are read off
the embedding model's cosines, and two models' cosines are not on one scale: multilingual-e5
rates unrelated texts 0.7-0.8, where all-MiniLM-L6-v2 rates them near 0.  The sections
(rag/core/sections.py, rag/core/retrieval_section.py) hold the values tuned for the default model; TUNED holds those of every
other model that ships here, each fitted by the scripts its comment names.  An explicit setting
(environment, archivist.toml, argument) always wins.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# embed_model -> section -> field -> value
TUNED: dict[str, dict[str, dict[str, Any]]] = {
    "multilingual-e5-small": {
        "retrieval": {
            # bench/tune_retrieval.py on the tuning halves (README: A multilingual embedding
            # model): rrf_k 30 lifts English MRR 0.707 -> 0.731 and zh-hard 0.546 -> 0.630 with a
            # lexical weight of 0.5 for Chinese, where this model no longer needs the keywords.
            "rrf_k": 30,
            "lexical_weight_cjk": 0.5,
            # English questions over Chinese passages: cross-language hit@5 0.000 -> 1.000, English
            # unchanged; 0.07 starts to cost English MRR (0.679), 0.08 collapses it (0.577).
            # Chinese questions: no offset helps (their English passages stay out of reach).
            "language_offset": 0.05,
            # Chinese questions over English passages: their Latin words searched alone, the
            # best English passage given the 5th place. Tuning half: cross-language zh->en hit@5
            # 0.062 -> 0.250, Chinese (Debian Reference) 1.000 / MRR 0.939 unchanged; 4th-and-5th
            # places cost Chinese hit@5 (0.984), glosses from CC-CEDICT added nothing
            # (README: A multilingual embedding model).
            "cross_language_slot": True,
            # The relevance bar, carried over by share: all-MiniLM-L6-v2 passes 54% of the top-10
            # hits of the English tuning questions at 0.52 and 43% of the Chinese ones at 0.45;
            # this model passes as many at these cosines (its unrelated texts read 0.7-0.8).
            "min_score": 0.88,
            "min_score_cjk": 0.895,
            # bench/calibrate_refusals.py on its tuning questions: wrongly refused 7% (Debian
            # manuals) and 4% (short documents), unanswerable refused 78% and 36%; Chinese 2% and
            # 10% wrongly, 50% and 70% of the unanswerable refused.
            "evidence_weights": (9.32, 2.61, 0.67, 5.91, 0.64, -15.87),
            "min_evidence": 0.325,
            "evidence_weights_cjk": (3.03, 7.04, 2.22, 2.79, 1.71, -13.11),
            "min_evidence_cjk": 0.27,
        },
        # bench/fit_support.py: the bars passing as many neighbouring sentences of one document
        # as 0.5 does with all-MiniLM-L6-v2 (0.54% of the English pairs, 2.2% of the Chinese).
        "answer": {"support_threshold": 0.714, "support_threshold_cjk": 0.619},
    },
}


def apply(data: dict, default_model: str) -> dict:
    """`data` (Settings' input, already in sections) with the tuned defaults of its embedding
    model filled in under what it gives."""
    embedding = data.get("embedding") or {}
    if isinstance(embedding, BaseModel):
        embedding = embedding.model_dump()
    tuned = TUNED.get(embedding.get("embed_model", default_model), {})
    for section, values in tuned.items():
        given = data.get(section) or {}
        if isinstance(given, BaseModel):  # a section object: only what it was given counts
            given = given.model_dump(include=given.model_fields_set)
        data[section] = {**values, **given}
    return data


def retuned(settings: BaseModel, old_model: str, new_model: str) -> dict[str, BaseModel]:
    """The sections of `settings` (made for `old_model`) that change for `new_model`: each field
    `old_model`'s tuning filled in goes back to the section's default, then `new_model`'s tuning
    fills what was not given.  A field counts as given when it was set and differs from
    `old_model`'s tuned value (set to that same value, it reads as the tuning's)."""
    old, new = TUNED.get(old_model, {}), TUNED.get(new_model, {})
    changed = {}
    for section in set(old) | set(new):
        current = getattr(settings, section)
        given = {name: getattr(current, name) for name in current.model_fields_set
                 if not (name in old.get(section, {})
                         and getattr(current, name) == old[section][name])}
        changed[section] = type(current).model_validate({**new.get(section, {}), **given})
    return changed
