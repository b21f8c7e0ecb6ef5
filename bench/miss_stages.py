"""Where retrieval loses the expected file: dense candidates, lexical candidates, or fusion.

Runs the project's own HybridRetriever, as configured (ARCHIVIST_EMBED_MODEL picks the model and
its tuned defaults from rag/core/model_defaults.py), on an index already built (no ingest), and
traces one search per question: the rank of the first chunk of an expected file (hits count by
file stem, as in rag/answering/evaluation.py) in

  D   the dense candidate list (retrieval_candidates deep, Chroma's approximate HNSW search)
  D*  the exact dense ranking: every stored vector's cosine (no language offset), i.e. what D
      would be without HNSW's approximation
  L   the lexical (BM25) candidate list, retrieval_candidates deep
  F   the fused ranking (RRF plus file support) before near-duplicates and crowding are sorted
      out; only its first max(4 top_k, 20) go on
  R   the final hits the evaluation scores (top_k 10; no query expansion, its default)

D, D*, L and F count chunks, R counts hits; beyond the depth, the rank in a --deep list is in
brackets.  Each hit@5 miss is put down to one stage:

  recall    neither D nor L has an expected file within the candidate depth
  fusion    D or L has it (which: in brackets) but it ends below rank 5
  doubtful  a returned top-5 chunk of another file has the same text as a chunk of an expected
            file (character-trigram Jaccard >= --same): the label, not retrieval, may be at
            fault.  Counted apart, never relabelled; the closest text from 0.5 up is printed.

    ARCHIVIST_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/miss_stages.py \\
        --index W/ours-index-zh-hard --data W/corpus-zh-hard \\
        tests/eval/questions.zh-hard.heldout.jsonl tests/eval/questions.zh-hard.tune.jsonl
    .venv/bin/python bench/miss_stages.py --index W-minilm/ours-index-zh-hard \\
        --data W-minilm/corpus-zh-hard tests/eval/questions.zh-hard.heldout.jsonl \\
        tests/eval/questions.zh-hard.tune.jsonl

W: the --work folder of `bench/compare_naive.py --corpus zh-hard` (its indexes and corpus).

`--try "key=value ..."` applies RetrievalConfig overrides as bench/tune_retrieval.py does: on
the tuning halves only.  Cost: one search per question, plus one exact ranking (numpy, all
vectors in memory: fine at 10k chunks, skip it with --no-exact on a large index).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tune_retrieval import parse_try  # noqa: E402
from rag.answering.evaluation import first_hit_rank, load_questions, stem  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402


def _retriever_class():
    from rag.retrieval.retriever import HybridRetriever

    class TracingRetriever(HybridRetriever):
        """HybridRetriever that keeps the lists each stage produced for the last question."""

        def _dense(self, vector, sources, cjk):
            ranked, own = super()._dense(vector, sources, cjk)
            self.trace.setdefault("vector", vector)
            self.trace.setdefault("dense", [h.chunk for h in ranked])  # with expansion: the expanded
            return ranked, own

        def _with_file_support(self, fused, dense, lexical):
            final = super()._with_file_support(fused, dense, lexical)
            self.trace["lexical"] = [(h.chunk_id, h.source) for h in lexical]
            self.trace["fused"] = sorted(final, key=final.__getitem__, reverse=True)
            return final

    return TracingRetriever


def _cell(rank: int | None, depth: int, deep: int | None) -> str:
    if rank is not None:
        return str(rank)
    return f">{depth}({deep})" if deep is not None else f">{depth}"


def _trigrams(text: str) -> set[str]:
    text = re.sub(r"\s+", "", text)
    return {text[i:i + 3] for i in range(len(text) - 2)}


def _same_text(returned, expected_chunks, threshold: float):
    """(expected chunk, Jaccard) of the expected-file chunk closest in text to `returned`, if any
    reaches the threshold."""
    a = _trigrams(returned.text)
    best = (None, 0.0)
    for chunk in expected_chunks:
        b = _trigrams(chunk.text)
        if a and b:
            j = len(a & b) / len(a | b)
            if j > best[1]:
                best = (chunk, j)
    return best if best[1] >= threshold else None


def _exact_ranker(store):
    """question vector -> chunk sources ranked by exact cosine over every stored vector."""
    import numpy as np

    chunks = list(store.iter_chunks())
    vectors = store.vectors([c.chunk_id for c in chunks])
    chunks = [c for c in chunks if c.chunk_id in vectors]
    matrix = np.array([vectors[c.chunk_id] for c in chunks], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)

    def ranked(vector) -> list[str]:
        v = np.asarray(vector, dtype=np.float32)
        return [chunks[i].source for i in np.argsort(-(matrix @ (v / np.linalg.norm(v))))]
    return ranked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path, nargs="+", help="question files (JSON Lines)")
    parser.add_argument("--index", type=Path, required=True, help="index folder (ARCHIVIST_INDEX_DIR)")
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder it indexes")
    parser.add_argument("--deep", type=int, default=1000, help="depth of the lists searched for "
                        "ranks beyond the candidate depth (0: off)")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact dense ranking (D*)")
    parser.add_argument("--same", type=float, default=0.8,
                        help="trigram Jaccard from which two chunks count as the same text")
    parser.add_argument("--try", dest="overrides", default="",
                        help="space-separated key=value RetrievalConfig overrides (tuning halves only)")
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    enforce_offline()

    from rag.core.settings import Settings
    from rag.language.terms import search_terms
    from rag.library import Library

    collection = Library(Settings(data_dir=args.data, index_dir=args.index)).default
    with collection.views.reading() as view:
        base = collection.assistant.retriever(view)
        config = base.config.model_copy(update=parse_try(args.overrides))
        retriever = _retriever_class()(view.store, view.lexical, base.embedder, config)
        depth = config.retrieval_candidates
        exact = None if args.no_exact else _exact_ranker(view.store)
        by_stem: dict[str, list[str]] = {}
        for source in view.lexical.sources():
            by_stem.setdefault(stem(source), []).append(source)
        print(f"model {collection.models.embedder.fingerprint}  index {args.index}  "
              f"candidates {depth}  rrf_k {config.rrf_k}  lexical_weight_cjk {config.lexical_weight_cjk}"
              f"{'  overrides: ' + args.overrides if args.overrides else ''}")

        for path in args.questions:
            questions = [q for q in load_questions(path) if q.answerable]
            stages: Counter[str] = Counter()
            misses, reciprocal, hit5 = [], [], 0
            for q in questions:
                retriever.trace = {}
                hits = retriever.search(q.q, args.top_k)  # as the evaluation searches (no expansion)
                t = retriever.trace
                d = first_hit_rank([c.source for c in t["dense"]], q.expect)
                lx = first_hit_rank([s for _, s in t["lexical"]], q.expect)
                source_of = {c.chunk_id: c.source for c in t["dense"]} | dict(t["lexical"])
                f = first_hit_rank([source_of[cid] for cid in t["fused"]], q.expect)
                r = first_hit_rank([h.chunk.source for h in hits], q.expect)
                ex = first_hit_rank(exact(t["vector"]), q.expect) if exact else None
                reciprocal.append(1.0 / r if r is not None and r <= 10 else 0.0)
                found = {(True, True): "both", (True, False): "dense only",
                         (False, True): "lexical only", (False, False): ""}[bool(d), bool(lx)]
                stages[f"found by {found or 'neither'}"] += 1
                if r is not None and r <= 5:
                    hit5 += 1
                    continue
                # Ranks beyond the candidate depth, in deeper lists.
                deep_d = deep_l = None
                if exact:
                    deep_d = ex
                elif args.deep and not d:
                    deeper = view.store.query(t["vector"], args.deep)
                    deep_d = first_hit_rank([h.chunk.source for h in deeper], q.expect)
                if args.deep and not lx:
                    deeper = view.lexical.search(search_terms(q.q), args.deep)
                    deep_l = first_hit_rank([h.source for h in deeper], q.expect)
                # The label: does a returned top-5 chunk of another file have an expected file's text?
                expected_chunks = []
                for s in (src for e in q.expect for src in by_stem.get(e, [])):
                    ids = sorted(view.store.ids_for_source(s))
                    expected_chunks += [chunk for chunk, _ in view.lexical.chunks(ids).values()]
                same = None
                for h in hits[:5]:
                    if stem(h.chunk.source) not in q.expect:
                        match = _same_text(h.chunk, expected_chunks, min(0.5, args.same))
                        if match and (same is None or match[1] > same[2]):
                            same = (h.chunk.source, match[0].source, match[1])
                stage = ("doubtful" if same and same[2] >= args.same else
                         f"fusion ({found})" if found else "recall")
                stages[stage] += 1
                # HNSW lost it: the exact ranking has it within the depth, the HNSW list not or at
                # least twice as deep.
                stages["ann"] += ex is not None and ex <= depth and (d is None or d >= 2 * ex)
                misses.append((q, stage, d, lx, f, r, deep_d, deep_l, hits, same, ex))

            n = len(questions)
            print(f"\n== {path.name}: n={n}  hit@5 {hit5 / n:.3f}  MRR@10 {statistics.fmean(reciprocal):.3f}  "
                  f"misses {n - hit5}")
            print(f"{'stage of each hit@5 miss':<32}{'misses':>7}")
            for key in ("recall", "fusion (both)", "fusion (dense only)", "fusion (lexical only)",
                        "doubtful"):
                print(f"  {key:<30}{stages[key]:>7}")
            if exact:
                print(f"  (misses whose expected file the exact dense top-{depth} has, the HNSW one "
                      f"not or at least twice as deep: {stages['ann']})")
            tops = Counter(stem(m[8][0].chunk.source) for m in misses if m[8])
            print("top-1 of the misses, most often: "
                  + ", ".join(f"{name} {count}" for name, count in tops.most_common(3)))
            print("expected file within the candidates (all questions): " + ", ".join(
                f"{k[9:]} {stages[k]}" for k in ("found by both", "found by dense only",
                                                  "found by lexical only", "found by neither")))
            print(f"\n{'id':<9}{'stage':<22}{'D':>10}{'D*':>5}{'L':>10}{'F':>5}{'R':>5}  expected -> top-1 | question")
            for q, stage, d, lx, f, r, deep_d, deep_l, hits, same, ex in misses:
                top1 = stem(hits[0].chunk.source) if hits else "-"
                print(f"{q.id:<9}{stage:<22}{_cell(d, depth, None if exact else deep_d):>10}"
                      f"{ex or '-':>5}{_cell(lx, depth, deep_l):>10}"
                      f"{f or '-':>5}{r or '-':>5}  {'/'.join(q.expect)} -> {top1} | {q.q}")
                if same:
                    print(f"{'':<9}closest text: returned {same[0]} ~ expected {same[1]} (Jaccard {same[2]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
