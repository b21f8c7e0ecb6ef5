"""Defaults tuned for one embedding model, in place of the sections' own where the settings give
no value of their own.

The relevance gate, the evidence test, fusion weights and the support threshold are read off
the embedding model's cosines, and two models' cosines are not on one scale: multilingual-e5
rates unrelated texts 0.7-0.8, where all-MiniLM-L6-v2 rates them near 0.  The sections
(rag/core/sections.py) hold the values tuned for the default model; TUNED holds those of every
other model that ships here, each fitted by the scripts its comment names.  An explicit setting
(environment, archivist.toml, argument) always wins.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# embed_model -> section -> field -> value
TUNED: dict[str, dict[str, dict[str, Any]]] = {}


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
