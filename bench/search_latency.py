"""Search latency p50/p95 at 10k and 100k chunks, dense-only and hybrid.

    .venv/bin/python bench/search_latency.py [--sizes 10000 100000] [--json OUT]
    ARCHIVIST_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/search_latency.py --chinese-every 4

The index is synthesized: passages of 120-180 words drawn from the PostgreSQL manual's own text
(so BM25 sees real term statistics), 20 per file, written straight into a real Chroma collection
and the real SQLite keyword index.  Embedding 100k passages with the real model would take about
an hour here, so their vectors come from a cheap stand-in (a fixed random vector per word,
summed and normalised: similar passages get similar vectors, which gives the HNSW graph a real
structure).  The questions (tests/eval/questions.en.jsonl) ARE embedded by the real configured
model, inside the timed search, as in `archivist search`, with its settings (multilingual-e5-small:
each script searched apart, language_offset; --chinese-every 4 makes a quarter of the files
Chinese so both scripts hold chunks).

- dense-only: embed the question + Chroma's nearest-neighbour query;
- hybrid: HybridRetriever.search, what /v1/search runs (dense + BM25, fusion, the chunk reads,
  near-duplicate collapse); then a third round times its parts where they run (`hybrid_stages`:
  the keyword search on its thread, the question's embedding and the vector query beside it).
Each question is asked twice; the first round warms caches and is not counted.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402

PER_FILE = 20
DIM = 384


def corpus_words(limit_files: int = 400, half: str = "postgresql") -> list[str]:
    from bench.corpus import build_corpus

    folder = build_corpus(ROOT / ".eval" / "corpus") / half
    words: list[str] = []
    for path in sorted(folder.glob("*.html"))[:limit_files]:
        text = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8", errors="replace"))
        words.extend(html.unescape(text).split())
    return words


class WordVectors:
    """A stand-in embedding for synthesis only: one fixed random vector per word."""

    def __init__(self, words: list[str]):
        vocab = sorted(set(words))
        self.ids = {w: i for i, w in enumerate(vocab)}
        self.table = np.random.default_rng(0).standard_normal((len(vocab), DIM)).astype(np.float32)

    def embed(self, passage: list[str]) -> list[float]:
        v = self.table[[self.ids[w] for w in passage]].sum(axis=0)
        return (v / (np.linalg.norm(v) or 1.0)).tolist()


def synthesize(view, english: list[str], vectors: WordVectors, first: int, count: int,
               chinese: list[str], chinese_every: int) -> None:
    """Files of PER_FILE passages; every `chinese_every`-th file (0: none) drawn from the Debian
    Reference in Chinese, so that chunks of both scripts are searched (language_offset)."""
    from rag.core.shapes import Chunk, sha256_text

    rng = random.Random(first)
    pending: list = []  # (chunks, vectors) per file, written 50 files per Chroma call
    for file_no in range(first // PER_FILE, (first + count) // PER_FILE):
        source = f"synthetic/{file_no:06d}.txt"
        file_hash = hashlib.sha256(source.encode()).hexdigest()
        chunks, vecs, offset = [], [], 0
        words = chinese if chinese_every and file_no % chinese_every == 0 else english
        for ordinal in range(PER_FILE):
            start = rng.randrange(len(words) - 200)
            passage = words[start:start + rng.randint(120, 180)]
            text = " ".join(passage)
            chunks.append(Chunk(hashlib.sha256(f"{source}{ordinal}".encode()).hexdigest()[:32],
                                source, text, offset, offset + len(text), None, None,
                                sha256_text(text), ordinal, file_hash))
            vecs.append(vectors.embed(passage))
            offset += len(text) + 1
        pending.append((chunks, vecs))
        if len(pending) == 50 or file_no == (first + count) // PER_FILE - 1:
            view.store.upsert([c for cs, _ in pending for c in cs], [v for _, vs in pending for v in vs])
            for cs, _ in pending:
                view.lexical.replace_source(cs[0].source, cs)
            pending = []
    view.lexical.bump_version()


def percentiles(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": q[49], "p95_ms": q[94], "n": len(ms)}


class _Stages:
    """Times the hybrid search's parts where they run (the keyword search on its own thread,
    beside the question's embedding and the vector query): which one holds the search back."""

    PARTS = {"keyword search": ("lexical", "search"), "question embedding": ("embedder", "embed"),
             "vector query": ("store", "query")}

    def __init__(self, retriever) -> None:
        self.retriever, self.ms = retriever, {name: [] for name in self.PARTS}

    def __enter__(self):
        for name, (owner, method) in self.PARTS.items():
            target = getattr(self.retriever, owner)
            real = getattr(target, method)

            def timed(*args, _real=real, _name=name, **kwargs):
                started = time.perf_counter()
                try:
                    return _real(*args, **kwargs)
                finally:
                    self.ms[_name].append((time.perf_counter() - started) * 1000)
            setattr(target, method, timed)  # an instance attribute: shadows the method
        return self

    def __exit__(self, *exc) -> None:
        for owner, method in self.PARTS.values():
            vars(getattr(self.retriever, owner)).pop(method, None)


def measure(retriever, embedder, store, questions: list[str], top_k: int = 5) -> dict:
    def dense(q):
        store.query(embedder.embed([q], "query")[0], retriever.config.retrieval_candidates)

    def hybrid(q):
        retriever.search(q, top_k)

    out = {}
    for name, fn in (("dense", dense), ("hybrid", hybrid)):
        for q in questions:  # warm-up round
            fn(q)
        times = []
        for q in questions:
            started = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = percentiles(times)
    with _Stages(retriever) as stages:  # a third round, timed part by part
        for q in questions:
            retriever.search(q, top_k)
    out["hybrid_stages"] = {name: percentiles(ms) for name, ms in stages.ms.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--chinese-every", type=int, default=0, help="every Nth synthetic file "
                        "from the Chinese half of the corpus (0: English only)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.library import Library

    enforce_offline()
    questions = [json.loads(line)["q"] for line in
                 (ROOT / "tests/eval/questions.en.jsonl").read_text().splitlines() if line.strip()]
    words = corpus_words()
    chinese = corpus_words(half="debian-reference") if args.chinese_every else []
    vectors = WordVectors(words + chinese)
    results = []
    with tempfile.TemporaryDirectory(prefix="archivist-bench-search-") as tmp:
        (Path(tmp) / "data").mkdir()
        library = Library(Settings(data_dir=Path(tmp) / "data", index_dir=Path(tmp) / "index",
                                   watch=False))
        collection = library.default
        embedder = collection.embedder
        have = 0
        for size in sorted(args.sizes):
            with collection.views.reading(check=False) as view:
                started = time.perf_counter()
                synthesize(view, words, vectors, have, size - have, chinese, args.chinese_every)
                print(f"[search] synthesized {size} chunks (+{size - have} in "
                      f"{time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
                have = size
                retriever = collection.assistant.retriever(view)
                results.append({"chunks": view.store.count(), "embed_model": embedder.fingerprint,
                                 "language_offset": retriever.config.language_offset,
                                 **measure(retriever, embedder, view.store, questions)})
        library.close()
    return emit(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
