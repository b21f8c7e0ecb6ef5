"""How many of a question's true nearest chunks Chroma's HNSW search returns, by search breadth
(`ef_search`, ARCHIVIST_HNSW_EF_SEARCH), and what the breadth costs per query.

The truth is the exact ranking: every stored vector's cosine to the question (numpy).  Each
breadth is measured in a fresh process, since a process keeps the graph it loaded with the
breadth it had.  Sets `ef_search` on the index it measures (only the search changes; any Archivist
process that opens the index later sets it back to its own setting), so point it at a copy if
another process is serving that index.

    ARCHIVIST_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/hnsw_recall.py \\
        --chroma W/ours-index-zh-hard/chroma tests/eval/questions.zh-hard.tune.jsonl

(W: the --work folder of `bench/compare_naive.py --corpus zh-hard`.)  Prints one line per
breadth: mean, minimum and 10th percentile of recall@N, and the query's median and p95 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _collection(chroma: Path):
    import chromadb

    client = chromadb.PersistentClient(path=str(chroma))
    names = [c.name for c in client.list_collections()]
    if len(names) != 1:
        raise SystemExit(f"{chroma} holds {len(names)} collections ({names}); give one index's chroma")
    return client.get_collection(names[0])


def measure(chroma: Path, questions: list[Path], depth: int) -> dict:
    """In this process: recall@depth and query ms at the collection's current breadth."""
    import numpy as np

    from rag.core.settings import Settings
    from rag.models.loaded import load_embedder

    collection = _collection(chroma)
    stored = collection.get(include=["embeddings"])
    ids = np.array(stored["ids"])
    matrix = np.array(stored["embeddings"], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    texts = [json.loads(line)["q"] for path in questions for line in path.open() if line.strip()]
    vectors = np.array(load_embedder(Settings()).embed(texts, "query"), dtype=np.float32)
    collection.query(query_embeddings=[vectors[0].tolist()], n_results=depth, include=[])
    recall, took = [], []
    for vector in vectors:
        truth = set(ids[np.argsort(-(matrix @ vector))[:depth]])
        started = time.perf_counter()
        found = collection.query(query_embeddings=[vector.tolist()], n_results=depth, include=[])
        took.append((time.perf_counter() - started) * 1e3)
        recall.append(len(truth & set(found["ids"][0])) / depth)
    return {"ef_search": collection.configuration["hnsw"]["ef_search"], "chunks": len(ids),
            "questions": len(texts), "recall_mean": float(np.mean(recall)),
            "recall_min": float(min(recall)), "recall_p10": float(np.percentile(recall, 10)),
            "query_ms_median": statistics.median(took),
            "query_ms_p95": float(np.percentile(took, 95))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chroma", type=Path, required=True, help="an index's chroma folder")
    parser.add_argument("questions", type=Path, nargs="+", help="question files (.jsonl, 'q')")
    parser.add_argument("--ef", type=int, nargs="+", default=[100, 200, 400, 800])
    parser.add_argument("--depth", type=int, default=50, help="N of recall@N (the candidate depth)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.chroma, args.questions, args.depth)))
        return 0
    rows = []
    for ef in args.ef:
        _collection(args.chroma).modify(configuration={"hnsw": {"ef_search": ef}})
        child = subprocess.run([sys.executable, __file__, "--one", "--chroma", str(args.chroma),
                                "--depth", str(args.depth), *map(str, args.questions)],
                               check=True, capture_output=True, text=True)
        row = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"ef_search {row['ef_search']:>4}: recall@{args.depth} mean {row['recall_mean']:.3f} "
              f"min {row['recall_min']:.2f} p10 {row['recall_p10']:.2f}; query "
              f"{row['query_ms_median']:.1f} ms median, {row['query_ms_p95']:.1f} p95 "
              f"({row['chunks']} chunks, {row['questions']} questions)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
