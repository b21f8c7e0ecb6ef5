"""Fit the fact check's support bar (AnswerConfig.support_threshold) for another embedding model.

    .venv/bin/python bench/fit_support.py multilingual-e5-small

A sentence of an answer counts as supported by a passage sentence whose support (weight x cosine
+ the rest x word overlap, rag/answering/verify.py) reaches the bar.  The bar of the default model
(0.5 with all-MiniLM-L6-v2) was set on its cosines; another model's run on another scale
(multilingual-e5 rates unrelated sentences 0.7-0.8).  So the bar is carried over by what it lets
through: every ordered pair of different sentences of one tuning document (the short documents of
tests/answers/docs and data/: neighbours on one subject, the hardest sentences to tell from a
supporting one), English and Chinese apart, and the bar for the other model is the one that
passes the same share of them as the default model's does.  Prints that share and the bar.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCUMENTS = [ROOT / "data" / "harbour-light-handbook.md", *sorted((ROOT / "tests/answers/docs").glob("*"))]


def sentences(path: Path) -> list[str]:
    from rag.answering.verify import _checkable
    from rag.language.text import sentence_spans

    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().lstrip("#*-> ").strip()
        out += [line[s:e] for s, e in sentence_spans(line) if _checkable(line[s:e])]
    return list(dict.fromkeys(out))


def supports(embedder, texts: list[str]) -> list[float]:
    """Support of every ordered pair of different sentences, as the verifier scores it."""
    import numpy as np

    from rag.answering.verify import SEMANTIC_WEIGHT, SEMANTIC_WEIGHT_CJK, _content_terms, overlap
    from rag.language.text import is_cjk

    vectors = np.array(embedder.embed(texts, "query"))
    cosines = vectors @ vectors.T
    words = [_content_terms(t) for t in texts]
    out = []
    for i, text in enumerate(texts):
        weight = SEMANTIC_WEIGHT_CJK if is_cjk(text) else SEMANTIC_WEIGHT
        out += [weight * max(float(cosines[i, j]), 0.0) + (1 - weight) * overlap(words[i], words[j])
                for j in range(len(texts)) if j != i]
    return out


def main() -> int:
    import numpy as np

    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.language.text import is_cjk
    from rag.models.loaded import load_embedder

    enforce_offline()
    model = sys.argv[1] if len(sys.argv) > 1 else "multilingual-e5-small"
    default = Settings().answer.support_threshold
    base, other = (load_embedder(Settings(embed_model=name)) for name in ("all-MiniLM-L6-v2", model))
    for language, cjk in (("English", False), ("Chinese", True)):
        docs = [s for s in map(sentences, DOCUMENTS) if s and is_cjk(s[0]) == cjk]
        ours = np.array([x for d in docs for x in supports(base, d)])
        theirs = np.array([x for d in docs for x in supports(other, d)])
        share = float(np.mean(ours >= default))
        bar = float(np.quantile(theirs, 1 - share))
        print(f"{language}: {len(ours)} pairs; all-MiniLM-L6-v2 passes {share:.3%} at {default}; "
              f"{model} passes as many at {bar:.3f} (its median pair {np.median(theirs):.3f}, "
              f"MiniLM's {np.median(ours):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
