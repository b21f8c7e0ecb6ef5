"""Fit the evidence test that decides refusals (RetrievalConfig.evidence_weights, min_evidence).

    .venv/bin/python bench/calibrate_refusals.py [--eval-dir .eval]

Tuning questions only: tests/answers/questions.{tune,dev}.jsonl on the short documents, and
tests/eval/questions.{en,zh,none,none-heldout}.jsonl on the Debian manuals (the `make eval`
corpus; indexed into .eval/index on first use, about 20 minutes on 2 cores; a folder of
bench/compare_naive.py --work with its ours-index-public is used as it is).  The held-back
sets (tests/answers/questions.final.jsonl, tests/eval/questions.none-heldout2.jsonl) are never
read here.

For each question it measures what rag/answering/evidence.py weighs (the passages' best sentence for
it: similarity, share of its words, whether it holds the kind of fact asked for; the best passage's
similarity and its z-score among the candidates), fits a logistic regression per language with each
(corpus, answerable?) cell weighing the same, and picks the highest bar that wrongly refuses at most
10% of either corpus's answerable questions.  Prints the settings to use.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MAX_WRONG = 0.10  # the target for answerable questions refused


def signals(data_dir: Path, index_dir: Path, files: list[Path], corpus: str) -> list[dict]:
    from ingest.indexer import Indexer
    from rag.answering.answerer import _asked
    from rag.answering.extractive import best_sentences
    from rag.answering.followup import FollowUp
    from rag.core.settings import load_settings
    from rag.language.text import is_cjk
    from rag.library import Library

    library = Library(load_settings(data_dir=data_dir, index_dir=index_dir, watch=False))
    collection = library.default
    Indexer(collection).ingest()  # nothing to do when already indexed
    rows = []
    with collection.views.reading() as view:
        retriever = collection.assistant.retriever(view)
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                question = item["q"]
                if retriever.unknown_names(question):
                    continue  # refused by the names rule, before any evidence
                retrieval = retriever.retrieve(question, collection.settings.query.top_k)
                passages = retriever.widen(retrieval.hits, collection.settings.answer.context_neighbours)
                quotes = best_sentences(question, [p.chunks or (p.hit.chunk,) for p in passages],
                                        library.models.embedder, kinds=_asked(FollowUp(question, question)))
                best = quotes[0] if quotes else None
                rows.append({"corpus": corpus, "cjk": is_cjk(question), "answerable": bool(item.get("expect")),
                             "x": [best.cosine if best else 0.0, best.words if best else 0.0,
                                   float(best.kind) if best else 0.0, retrieval.dense_best, retrieval.dense_z]})
    library.close()
    return rows


def fit(rows: list[dict]) -> tuple[list[float], float, dict]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([r["x"] for r in rows])
    y = np.array([r["answerable"] for r in rows])
    cell = [(r["corpus"], r["answerable"]) for r in rows]
    weight = np.array([1.0 / cell.count(c) for c in cell])
    weight *= len(weight) / weight.sum()
    model = LogisticRegression(C=10).fit(x, y, sample_weight=weight)
    p = model.predict_proba(x)[:, 1]
    corpora = sorted({r["corpus"] for r in rows})
    bar, figures = 0.0, {}
    for candidate in np.linspace(0.05, 0.95, 181):
        wrong = {c: float(np.mean([p[i] < candidate for i, r in enumerate(rows) if r["corpus"] == c and r["answerable"]]))
                 for c in corpora}
        if max(wrong.values()) <= MAX_WRONG:
            refused = {c: float(np.mean([p[i] < candidate for i, r in enumerate(rows)
                                         if r["corpus"] == c and not r["answerable"]])) for c in corpora}
            bar, figures = float(candidate), {"wrongly_refused": wrong, "unanswerable_refused": refused}
    weights = [round(float(w), 2) for w in model.coef_[0]] + [round(float(model.intercept_[0]), 2)]
    return weights, round(bar, 3), figures


def main() -> int:
    import argparse

    from bench.answers import corpus
    from bench.corpus import build_corpus
    from rag.core.offline import enforce_offline

    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-dir", type=Path, default=ROOT / ".eval",
                        help="where the Debian manuals and their index are (make eval's folder; "
                        "bench/compare_naive.py --work W keeps them as W/corpus, W/ours-index-public)")
    args = parser.parse_args()
    enforce_offline()
    corpus_dir, index_dir = args.eval_dir / "corpus", args.eval_dir / "index"
    if (args.eval_dir / "ours-index-public").exists():
        index_dir = args.eval_dir / "ours-index-public"
    work = Path(tempfile.mkdtemp(prefix="archivist-calibrate-"))
    try:
        rows = signals(corpus(work / "data"), work / "index",
                       [ROOT / "tests/answers/questions.tune.jsonl", ROOT / "tests/answers/questions.dev.jsonl"],
                       "short documents")
        evaluation = ROOT / "tests" / "eval"
        rows += signals(build_corpus(corpus_dir), index_dir,
                        [evaluation / f"questions.{name}.jsonl" for name in ("en", "zh", "none", "none-heldout")],
                        "Debian manuals")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for cjk, suffix in ((False, ""), (True, "_cjk")):
        weights, bar, figures = fit([r for r in rows if r["cjk"] == cjk])
        print(f"ARCHIVIST_EVIDENCE_WEIGHTS{suffix.upper()}={','.join(map(str, weights))}")
        print(f"ARCHIVIST_MIN_EVIDENCE{suffix.upper()}={bar}")
        print(f"  on the tuning questions: {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
