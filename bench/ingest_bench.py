"""Full ingest against the naive llama-index recipe, and re-syncs.

    .venv/bin/python bench/ingest_bench.py [--quick] [--no-resync] [--json OUT]
    ARCHIVIST_EMBED_MODEL=multilingual-e5-small .venv/bin/python bench/ingest_bench.py --quick

For each half of the public corpus (bench/corpus.py: PostgreSQL's English HTML manual, the Debian
reference in Chinese) Archivist and the recipe ingest the same files with the configured
embedding model, each in a fresh process, one after the other, so the ratios between them are
measured under the same load.  The recipe runs twice: with Archivist's chunk size and overlap in
the model's tokens ("naive-same-chunks": both embed every token of the same text, the fair race),
and as users run it (its 1,024-token chunks cut to the model's window, metadata header included,
as llama-index sends them: it embeds a fraction of the text, reported as share_seen).  Each is
timed from before its first import to its last write, as a user running either waits for it.
Each reports MB/s of input files, chunks/s, embedded tokens/s and the share of each chunk's
tokens the model saw.

Then, on the English index just built, Archivist's re-syncs: nothing changed, one file edited,
one renamed, 10% deleted; each with its time (a fresh Library, so it includes loading what a
fresh `archivist ingest` loads, but not the interpreter start) and the chunks it embedded.

--quick takes every 10th file (a few minutes instead of about 25 on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def subset(corpus: Path, dest: Path, every: int) -> Path:
    """Every `every`-th file of each half of the corpus, copied (ingest follows no links)."""
    for half in sorted(p for p in corpus.iterdir() if p.is_dir()):
        (dest / half.name).mkdir(parents=True, exist_ok=True)
        for path in _files(half)[::every]:
            shutil.copy2(path, dest / half.name / path.name)
    return dest


# The public evaluation questions of each half of the corpus (file stems match either layout).
QUESTIONS = {"postgresql": ["questions.en.jsonl", "questions.none.jsonl"],
             "debian-reference": ["questions.zh.jsonl"]}


def retrieval(half: str, search, top_k: int) -> list[dict]:
    from rag.answering.evaluation import evaluate, load_questions

    return [{k: v for k, v in evaluate(name, load_questions(ROOT / "tests/eval" / name), search,
                                       top_k).to_dict().items() if not isinstance(v, list)}
            for name in QUESTIONS[half]]


def _token_share(count, texts: list[str], window: int) -> tuple[int, int]:
    """(tokens in the texts, tokens of them the model saw) for a model window of `window`
    tokens (special tokens excluded)."""
    total = seen = 0
    for text in texts:
        n = count(text)
        total += n
        seen += min(n, window)
    return total, seen


# --- children: one measurement each, printing one JSON line ----------------------------------

def child_ours(data: Path, work: Path) -> dict:
    started = time.perf_counter()  # before the first import, as for the recipe
    from ingest.indexer import Indexer
    from rag.core.settings import Settings
    from rag.library import Library

    from rag.models.loaded import for_bulk_embedding

    settings = for_bulk_embedding(Settings(data_dir=data, index_dir=work, ocr="off", watch=False))
    library = Library(settings)  # as `archivist ingest` builds it
    report = Indexer(library.default).ingest()
    seconds = time.perf_counter() - started
    embedder = library.models.embedder
    with library.default.views.reading() as view:
        unique = {c.vector_key: c.embedding_text() for c in view.store.iter_chunks()}
        chunks = view.store.count()
        quality = retrieval(data.name, library.default.assistant.retriever(view).search, 10)
    total, seen = _token_share(embedder.count_tokens, list(unique.values()), embedder.max_tokens - 2)
    return {"seconds": seconds, "chunks": chunks, "chunks_embedded": report.chunks_embedded,
            "tokens": total, "tokens_seen": seen, "failed": report.failed,
            "backend": f"{settings.embedding.embed_backend}: {type(embedder).__name__}, "
                       f"{getattr(embedder, 'precision', '?')}", "retrieval": quality}


def child_naive(data: Path, work: Path, same_chunks: bool = False) -> dict:
    """The llama-index recipe with the configured embedding model (its query:/passage: prompts
    given, as its model card asks).  As users run it: its default 1,024-token chunks, cut to the
    model's window.  With `same_chunks`: Archivist's chunk size and overlap counted in the model's
    own tokens, so both embed every token of the same amount of text."""
    started = time.perf_counter()  # the recipe as a user runs it: its imports count, as ours do
    import chromadb
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.core.vector_stores.utils import metadata_dict_to_node
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.core.settings import Settings
    from rag.models.embedder import prompts
    from rag.models.files import resolve_embed_model

    settings = Settings()
    folder = resolve_embed_model(settings.embedding.embed_model)
    asks = prompts(folder)
    embed = HuggingFaceEmbedding(model_name=str(folder), device="cpu",
                                 query_instruction=asks.get("query"), text_instruction=asks.get("passage"))
    LlamaSettings.embed_model, LlamaSettings.llm = embed, None
    tokenizer = embed._model.tokenizer
    if same_chunks:
        LlamaSettings.node_parser = SentenceSplitter(
            chunk_size=settings.chunking.chunk_tokens, chunk_overlap=settings.chunking.chunk_overlap_tokens,
            tokenizer=lambda t: tokenizer(t, add_special_tokens=False)["input_ids"])
    documents = SimpleDirectoryReader(str(data), recursive=True, exclude_hidden=False).load_data()
    collection = chromadb.PersistentClient(path=str(work / "naive")).get_or_create_collection("naive")
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    index = VectorStoreIndex.from_documents(documents, storage_context=storage)
    seconds = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=5)

    def search(question: str, top_k: int) -> list:
        from rag.core.shapes import Chunk, Hit

        return [Hit(Chunk(n.node_id, Path(n.metadata["file_path"]).name, "", 0, 0, None, None, "", 0, ""),
                    float(n.score or 0.0)) for n in retriever.retrieve(question)]
    got = collection.get(include=["metadatas", "documents"])
    texts = [metadata_dict_to_node(m, text=d).get_content(metadata_mode=MetadataMode.EMBED)
             for m, d in zip(got["metadatas"], got["documents"])]
    window = embed._model.max_seq_length - 2
    count = lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    total, seen = _token_share(count, texts, window)
    return {"seconds": seconds, "chunks": len(texts), "chunks_embedded": len(texts),
            "tokens": total, "tokens_seen": seen, "failed": 0,
            "retrieval": retrieval(data.name, search, 5)}


def child_resync(data: Path, work: Path) -> dict:
    """One `archivist ingest` of the folder as it is now, with a fresh Library."""
    from ingest.indexer import Indexer
    from rag.core.settings import Settings
    from rag.library import Library

    settings = Settings(data_dir=data, index_dir=work, ocr="off", watch=False)
    started = time.perf_counter()
    report = Indexer(Library(settings).default).ingest()
    return {"seconds": time.perf_counter() - started, "chunks_embedded": report.chunks_embedded,
            "added": report.added, "updated": report.updated, "removed": report.removed,
            "unchanged": report.unchanged}


CHILDREN = {"ours": child_ours, "naive": child_naive, "resync": child_resync,
            "naive-same-chunks": lambda data, work: child_naive(data, work, same_chunks=True)}


def run_child(kind: str, data: Path, work: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(data), str(work)],
                         check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the parent ---------------------------------------------------------------------------

def rates(run: dict, size_bytes: int) -> dict:
    s = run["seconds"]
    return {**run, "mb_per_s": size_bytes / 1e6 / s, "chunks_per_s": run["chunks_embedded"] / s,
            "embedded_tokens_per_s": run["tokens_seen"] / s,
            "share_seen": run["tokens_seen"] / max(1, run["tokens"])}


def full_ingest(corpus: Path, work: Path) -> list[dict]:
    rows = []
    for half in sorted(p for p in corpus.iterdir() if p.is_dir()):
        files = _files(half)
        size = sum(p.stat().st_size for p in files)
        row = {"corpus": half.name, "files": len(files), "mb": size / 1e6}
        for system in ("ours", "naive-same-chunks", "naive"):
            print(f"[ingest] {half.name}: {system} ...", file=sys.stderr, flush=True)
            row[system] = rates(run_child(system, half, work / f"{system}-{half.name}"), size)
        row["naive_over_ours_time"] = row["naive"]["seconds"] / row["ours"]["seconds"]
        row["same_chunks_naive_over_ours_time"] = row["naive-same-chunks"]["seconds"] / row["ours"]["seconds"]
        rows.append(row)
    return rows


def resyncs(data: Path, index: Path, full_s: float) -> list[dict]:
    """Re-sync scenarios on an indexed folder, in order (each starts where the last left off)."""
    files = _files(data)
    edited, renamed = files[len(files) // 3], files[2 * len(files) // 3]
    deleted = [p for i, p in enumerate(files) if i % 10 == 5 and p not in (edited, renamed)]

    def edit():
        text = edited.read_text(encoding="utf-8", errors="replace")
        edited.write_text(text.replace("</body>", "<p>One sentence added for the re-sync benchmark.</p></body>", 1),
                          encoding="utf-8")

    scenarios = [("unchanged", lambda: None), ("one file edited", edit),
                 ("one file renamed", lambda: renamed.rename(renamed.with_name("renamed-" + renamed.name))),
                 ("10% of files deleted", lambda: [p.unlink() for p in deleted])]
    rows = []
    for name, change in scenarios:
        change()
        print(f"[resync] {name} ...", file=sys.stderr, flush=True)
        run = run_child("resync", data, index)
        rows.append({"scenario": name, **run, "share_of_full_ingest": run["seconds"] / full_s})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every 10th file of the corpus")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--no-resync", action="store_true", help="full ingests only")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from rag.core.offline import enforce_offline

    enforce_offline()
    if args.child:
        kind, data, work = args.child
        print(json.dumps(CHILDREN[kind](Path(data), Path(work))))
        return 0

    from bench.corpus import build_corpus

    corpus = build_corpus(ROOT / ".eval" / "corpus")
    work = args.work or Path(tempfile.mkdtemp(prefix="archivist-bench-ingest-"))
    try:
        data = subset(corpus, work / "data", 10 if args.quick else 1)
        result = {"quick": args.quick, "cpus": len(os.sched_getaffinity(0)),
                  "full_ingest": full_ingest(data, work)}
        english = next(r for r in result["full_ingest"] if r["corpus"] == "postgresql")
        if not args.no_resync:
            result["resync"] = resyncs(data / "postgresql", work / "ours-postgresql",
                                       english["ours"]["seconds"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
