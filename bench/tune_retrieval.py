"""Retrieval settings compared on question sets over an index already built (no ingest, no model).

Each `--try` is a set of RetrievalConfig overrides (and `lexical_weights=h/b/t/g`, the BM25
column weights of the SQLite index, applied at query time); every one is evaluated on every
`--set` and printed as one row per set: hit@1, hit@5, MRR@10, passage@5.  The question's
embedding and dense candidates are computed once per question and reused across tries.

    python bench/tune_retrieval.py --index .eval/idx/zh-hard --data .eval/corpus-zh \\
        --set tests/eval/questions.zh-hard.tune.jsonl \\
        --try "" --try "fusion_cjk=score score_lexical_weight_cjk=1.5"

Tune on the tuning halves only; run the held-back halves once the settings are chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answering.evaluation import evaluate, load_questions  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402


class _CachedEmbedder:
    """The embedder, remembering single-text embeddings (the questions)."""

    def __init__(self, inner) -> None:
        self._inner, self._memo = inner, {}

    def embed(self, texts, kind="passage"):
        if len(texts) == 1:
            if (texts[0], kind) not in self._memo:
                self._memo[texts[0], kind] = self._inner.embed(texts, kind)[0]
            return [self._memo[texts[0], kind]]
        return self._inner.embed(texts, kind)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _CachedStore:
    """The vector store, remembering dense queries."""

    def __init__(self, inner) -> None:
        self._inner, self._memo = inner, {}

    def query(self, vector, k, sources=None, script=None):
        key = (tuple(vector), k, None if sources is None else tuple(sources), script)
        if key not in self._memo:
            self._memo[key] = self._inner.query(vector, k, sources, script=script)
        return self._memo[key]

    def __getattr__(self, name):
        return getattr(self._inner, name)


def parse_try(spec: str) -> dict:
    out = {}
    for item in spec.split():
        key, _, value = item.partition("=")
        if key == "lexical_weights":
            out[key] = tuple(float(v) for v in value.split("/"))
        elif value.replace(".", "", 1).lstrip("-").isdigit():
            out[key] = float(value) if "." in value else int(value)
        else:
            out[key] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="index folder (ARCHIVIST_INDEX_DIR)")
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder it indexes")
    parser.add_argument("--set", action="append", type=Path, required=True, dest="sets")
    parser.add_argument("--try", action="append", default=None, dest="tries",
                        help="space-separated key=value RetrievalConfig overrides ('' = as configured)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--misses", action="store_true", help="print each set's misses")
    parser.add_argument("--json", type=Path, help="also write the reports here")
    args = parser.parse_args()
    enforce_offline()

    from rag.core.settings import Settings
    from rag.library import Library
    from rag.retrieval.retriever import HybridRetriever

    library = Library(Settings(data_dir=args.data, index_dir=args.index))
    collection = library.default
    questions = {path: load_questions(path) for path in args.sets}
    results = []
    with collection.views.reading() as view:
        if view.lexical.stale:
            sys.exit(f"{args.index}: the lexical index is of another terms version; run "
                     "`archivist ingest` on it first (it rebuilds the lexical side only).")
        base = collection.assistant.retriever(view)
        embedder, store = _CachedEmbedder(base.embedder), _CachedStore(view.store)
        weights = getattr(view.lexical, "_weights", None)  # SQLite's BM25 column weights
        import rag.language.terms as terms_module

        query_grams = getattr(terms_module, "QUERY_GRAMS", None)
        for spec in args.tries or [""]:
            overrides = parse_try(spec)
            terms_module.QUERY_GRAMS = overrides.pop("query_grams", query_grams)
            if weights is not None:
                view.lexical._weights = overrides.pop("lexical_weights", weights)
            config = base.config.model_copy(update=overrides)
            retriever = HybridRetriever(store, view.lexical, embedder, config)
            for path, qs in questions.items():
                r = evaluate(path.name, qs, retriever.search, args.top_k)
                p5 = "-" if r.passage_at_5 is None else f"{r.passage_at_5:.3f}"
                print(f"{spec or '(configured)':<70} {path.name:<36} n={r.answerable:<3} "
                      f"hit@1 {r.hit_at_1:.3f}  hit@5 {r.hit_at_5:.3f}  MRR@10 {r.mrr_at_10:.3f}  "
                      f"passage@5 {p5}  p50 {r.latency_p50_ms:.0f} ms", flush=True)
                if args.misses:
                    for miss in r.misses:
                        print("    miss", json.dumps(miss, ensure_ascii=False))
                results.append({"try": spec, "set": path.name, **r.to_dict()})
        if weights is not None:
            view.lexical._weights = weights
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
