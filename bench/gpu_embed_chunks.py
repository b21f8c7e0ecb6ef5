"""The embedding model over the real chunks of an index, on a GPU the way
ARCHIVIST_EMBED_DEVICE=cuda runs it, against this machine's CPU path; and the project's ingest
timed end to end, optionally with the model's forward pass stubbed out (what everything else
costs).  Written for multilingual-e5-small on a lent GPU (README, "A stronger model, or a GPU").

Subcommands, run from the repository root (ARCHIVIST_EMBED_MODEL names the model throughout):

  export   The unique embedding texts of an index in ingest order (source, then chunk order),
           as the pipeline hands them to Embedder.embed (Chunk.embedding_text, one per
           vector_key; the model's "passage: " prompt is added by the embedder itself), and the
           vectors stored for them (those the index's own ingest computed).  Reads a copy.
  cpu      A sample of them (--sample, evenly spaced) through the embedder `archivist ingest`
           builds on this CPU (for_bulk_embedding + load_embedder: ONNX fp32, batch 8, on CPUs
           without AMX), one embed call as one ingest batch; best of --runs passes.
  gpu      All of them through SentenceTransformerEmbedder(device="cuda"), which load_embedder
           builds for ARCHIVIST_EMBED_DEVICE=cuda (fp32, batch ARCHIVIST_EMBED_BATCH_SIZE or 32),
           in embed calls of at most 1,000 texts as the pipeline's batches, after a warm-up.  Then
           batch 256 (the setting allows it), and the same module cast to fp16 and bf16: not a
           path the project offers (its bf16 is CPU autocast only), measured to see what one
           would give.  Cosines of each against fp32; the fp32 vectors and every variant's
           vectors of the --sample chunks are saved for `compare`.
  compare  GPU fp32 against the CPU sample (computed fresh) and against the stored vectors of
           every chunk; merges the JSON of the other steps into one result.
  ingest   The project's ingest of a folder (Indexer.ingest, as `archivist ingest` and
           bench/ingest_bench.py's child_ours run it), timed from before its first import to
           its last write, with the wall time spent inside Embedder.embed (on the pipeline's
           embedding thread, overlapped with parsing).  --stub keeps the model's tokenizer (so
           the same chunks) but returns hash-seeded random unit vectors instead of running it.

What was run for bench/results/gpu-e5-*.json (the public corpus index of 19,915 chunks):

  export ARCHIVIST_EMBED_MODEL=multilingual-e5-small
  .venv/bin/python bench/gpu_embed_chunks.py export --index /work/evalwork-e5/ours-index-public \\
      --texts chunks.jsonl.xz --vectors stored.npy
  .venv/bin/python bench/gpu_embed_chunks.py cpu --texts chunks.jsonl.xz --sample 300 --out cpu.json
  .venv/bin/python bench/gpu_embed_chunks.py ingest --stub --data /work/evalwork/corpus --out stub.json
  # on the GPU machine (python3 with torch + sentence-transformers; the e5 folder is built by
  # rag/models/multilingual_e5.py from the two packaged files, found on PYTHONPATH):
  ARCHIVIST_EMBED_DEVICE=cuda python3 bench/gpu_embed_chunks.py gpu --texts chunks.jsonl.xz \\
      --sample 300 --out gpu.json --vectors-dir $OUT
  ARCHIVIST_EMBED_DEVICE=cuda python3 bench/gpu_embed_chunks.py ingest --data corpus --out e2e.json
  .venv/bin/python bench/gpu_embed_chunks.py compare --gpu-dir DIR --cpu cpu.json --stored stored.npy \\
      --parts stub.json e2e.json --out bench/results/gpu-e5-h200.json
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INGEST_BATCH = 1000  # ingest/pipeline.py _BATCH_CHUNKS: texts per embed call at most


def load_texts(path: Path) -> list[str]:
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def sample_indices(n: int, k: int) -> list[int]:
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


def machine() -> dict:
    info = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in
                           Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration, AttributeError):
        pass
    return info


# --- export -----------------------------------------------------------------------------------

def export(args: argparse.Namespace) -> dict:
    import shutil
    import tempfile

    import chromadb
    import numpy as np

    from rag.core.offline import enforce_offline
    from rag.storage.chunk_store import _from_record

    enforce_offline()
    copy = Path(tempfile.mkdtemp()) / "chroma"
    shutil.copytree(args.index / "chroma", copy)  # Chroma may write on open: never the original
    collection = chromadb.PersistentClient(path=str(copy)).get_collection(args.collection)
    chunks, vectors, offset = [], [], 0
    while True:
        got = collection.get(include=["documents", "metadatas", "embeddings"], limit=2000, offset=offset)
        chunks += [_from_record(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]
        vectors += list(got["embeddings"])
        if len(got["ids"]) < 2000:
            break
        offset += 2000
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].source, chunks[i].ordinal))
    seen, rows, kept = set(), [], []
    for i in order:
        key = chunks[i].vector_key
        if key not in seen:
            seen.add(key)
            rows.append({"key": key, "source": chunks[i].source, "text": chunks[i].embedding_text()})
            kept.append(vectors[i])
    with lzma.open(args.texts, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.vectors:
        np.save(args.vectors, np.asarray(kept, dtype=np.float32))
    shutil.rmtree(copy.parent, ignore_errors=True)
    return {"index": str(args.index), "collection_metadata": collection.metadata, "chunks": len(chunks),
            "unique_texts": len(rows), "chars": sum(len(r["text"]) for r in rows)}


# --- cpu --------------------------------------------------------------------------------------

def cpu(args: argparse.Namespace) -> dict:
    import numpy as np

    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.models.loaded import for_bulk_embedding, load_embedder

    enforce_offline()
    texts = load_texts(args.texts)
    picked = sample_indices(len(texts), args.sample)
    sample = [texts[i] for i in picked]
    embedder = load_embedder(for_bulk_embedding(Settings()))  # what `archivist ingest` embeds with
    embedder.embed(sample[:8])  # warm-up: loads the session
    seconds, vectors = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        vectors = embedder.embed(sample)
        seconds.append(time.perf_counter() - t0)
    tokens = sum(embedder.count_tokens(t) for t in sample)
    np.save(args.out.with_suffix(".npy"), np.asarray(vectors, dtype=np.float32))
    best = min(seconds)
    return {"machine": machine(), "embedder": type(embedder).__name__,
            "precision": getattr(embedder, "precision", "?"), "device": getattr(embedder, "device", "cpu"),
            "batch_size": getattr(embedder, "_batch_size", None), "sample": len(sample),
            "sample_indices": picked, "tokens": tokens, "seconds": [round(s, 2) for s in seconds],
            "chunks_per_s": round(len(sample) / best, 2), "tokens_per_s": round(tokens / best, 1),
            "vectors": str(args.out.with_suffix(".npy").name)}


# --- gpu --------------------------------------------------------------------------------------

def gpu(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from rag.core.offline import enforce_offline
    from rag.models.embedder import SentenceTransformerEmbedder, prefixed
    from rag.models.files import resolve_embed_model

    enforce_offline()
    name = os.environ.get("ARCHIVIST_EMBED_MODEL", "multilingual-e5-small")
    texts = load_texts(args.texts)[:args.limit]
    picked = sample_indices(len(texts), args.sample)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    model_dir = resolve_embed_model(name)  # e5: dequantized from the packaged 4-bit file on first use
    folder_s = time.perf_counter() - t0
    batch = int(os.environ.get("ARCHIVIST_EMBED_BATCH_SIZE") or 32)
    t0 = time.perf_counter()
    embedder = SentenceTransformerEmbedder(model_dir, name, batch_size=batch, device=args.device)  # load_embedder's
    load_s = time.perf_counter() - t0
    # the chunks' own tokens (Embedder.count_tokens, as bench/embed_speed.py counts), and what the
    # model is fed: the prompt and special tokens too, cut to its window
    tokens = [len(e.ids) for e in embedder._tokenizer.encode_batch(texts, add_special_tokens=False)]
    fed = [min(len(e.ids), embedder.max_tokens)
           for e in embedder._tokenizer.encode_batch(prefixed(texts, "passage", embedder.prompts))]
    result = {"machine": machine(), "torch": torch.__version__, "cuda": torch.version.cuda,
              "gpu": torch.cuda.get_device_name(0) if cuda else None, "model": name, "model_dir": str(model_dir),
              "folder_build_s": round(folder_s, 2), "model_load_s": round(load_s, 2),
              "device": embedder.device, "prompts": embedder.prompts, "max_tokens": embedder.max_tokens,
              "texts": len(texts), "tokens": sum(tokens), "tokens_fed": sum(fed),
              "tokens_per_text_mean": round(statistics.mean(tokens), 1),
              "over_window": sum(n >= embedder.max_tokens for n in fed),
              "sample_indices": picked, "runs": []}

    def once(size: int) -> tuple[float, list]:
        embedder._batch_size = size  # what ARCHIVIST_EMBED_BATCH_SIZE sets
        sync()
        start, out = time.perf_counter(), []
        for i in range(0, len(texts), INGEST_BATCH):  # one embed call per ingest batch
            out += embedder.embed(texts[i:i + INGEST_BATCH])
        sync()
        return time.perf_counter() - start, out

    reference = None
    samples = {}
    notes = {"fp32": "project path (ARCHIVIST_EMBED_DEVICE=cuda; batch: ARCHIVIST_EMBED_BATCH_SIZE)",
             "fp16": "module cast to fp16: not a project path", "bf16": "module cast to bf16: not a project path"}
    variants = [(v.split(":")[0], int(v.split(":")[1])) for v in args.variants.split(",")]
    assert variants[0] == ("fp32", batch), "the first variant is the reference: the project's own"
    for dtype, size in variants:
        note = notes[dtype]
        embedder._model.to({"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype])
        embedder._batch_size = size
        embedder.embed(texts[:size * 2])  # warm-up at this shape
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        seconds = []
        for run in range(args.runs):
            s, out = once(size)
            seconds.append(s)
            if s > args.slow_s:  # one pass is enough for a slow variant
                break
        vectors = np.asarray(out, dtype=np.float32)
        if reference is None:
            reference = vectors
            half = len(vectors) // 2  # two files: each under the 16 MiB a returned file may have
            np.save(args.vectors_dir / "gpu_fp32_a.npy", vectors[:half])
            np.save(args.vectors_dir / "gpu_fp32_b.npy", vectors[half:])
        v, r = vectors.astype(np.float64), reference.astype(np.float64)
        cos = np.sum(v * r, axis=1) / (np.linalg.norm(v, axis=1) * np.linalg.norm(r, axis=1))
        samples[f"{dtype}_b{size}"] = vectors[picked]
        best = min(seconds)
        row = {"dtype": dtype, "batch_size": size, "note": note, "seconds": [round(s, 2) for s in seconds],
               "chunks_per_s": round(len(texts) / best, 1), "tokens_per_s": round(sum(tokens) / best),
               "tokens_fed_per_s": round(sum(fed) / best),
               "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
               "cosine_to_fp32_b32": {"mean": float(cos.mean()), "min": float(cos.min())}}
        result["runs"].append(row)
        print(json.dumps(row), flush=True)
        np.savez(args.vectors_dir / "gpu_samples.npz", **samples)  # after each: a cut-off run keeps
        args.out.write_text(json.dumps(result, indent=2) + "\n")   # what it measured
    return result


# --- compare ----------------------------------------------------------------------------------

def compare(args: argparse.Namespace) -> dict:
    import numpy as np

    def stats(a, b) -> dict:
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        return {"n": len(cos), "mean": round(float(cos.mean()), 7), "min": round(float(cos.min()), 7),
                "p01": round(float(np.quantile(cos, 0.01)), 7)}

    gpu_json = json.loads((args.gpu_dir / "gpu.json").read_text())
    cpu_json = json.loads(args.cpu.read_text())
    fp32 = np.concatenate([np.load(args.gpu_dir / "gpu_fp32_a.npy"), np.load(args.gpu_dir / "gpu_fp32_b.npy")])
    samples = np.load(args.gpu_dir / "gpu_samples.npz")
    cpu_vectors = np.load(args.cpu.with_suffix(".npy"))
    picked = cpu_json["sample_indices"]
    assert picked == gpu_json["sample_indices"], "CPU and GPU samples differ"
    cosines = {"gpu_fp32_vs_cpu_onnx_sample": stats(fp32[picked], cpu_vectors)}
    for name in samples.files:
        cosines[f"gpu_{name}_vs_cpu_onnx_sample"] = stats(samples[name], cpu_vectors)
    if args.stored:
        stored = np.load(args.stored)
        cosines["gpu_fp32_vs_stored_index_all"] = stats(fp32, stored)
        cosines["cpu_onnx_now_vs_stored_index_sample"] = stats(cpu_vectors, stored[picked])
    parts = {Path(p).stem: json.loads(Path(p).read_text()) for p in args.parts}
    return {"gpu": gpu_json, "cpu_sample": cpu_json, "cosines": cosines, **parts}


# --- ingest -----------------------------------------------------------------------------------

class _Timed:
    """The configured embedder, with the wall time spent in embed() counted; `stub`: random unit
    vectors (seeded by the text) in place of the model's, tokenizer unchanged."""

    def __init__(self, inner, stub: bool) -> None:
        self._inner, self._stub = inner, stub
        self.embed_s, self.texts, self.calls = 0.0, 0, 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def embed(self, texts, kind="passage"):
        start = time.perf_counter()
        if self._stub:
            import zlib

            import numpy as np

            out = []
            for text in texts:
                v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(self._inner.dimension)
                out.append((v / np.linalg.norm(v)).astype(np.float32).tolist())
        else:
            out = self._inner.embed(texts, kind)
        self.embed_s += time.perf_counter() - start
        self.texts += len(texts)
        self.calls += 1
        return out


def ingest(args: argparse.Namespace) -> dict:
    started = time.perf_counter()  # before the first import, as bench/ingest_bench.py's child_ours
    import shutil
    import tempfile

    from rag.core.offline import enforce_offline

    enforce_offline()
    from ingest.indexer import Indexer
    from rag.core.settings import Settings
    from rag.library import Library
    from rag.models.loaded import Models, for_bulk_embedding, load_embedder

    work = Path(tempfile.mkdtemp(prefix="ingest-"))
    settings = for_bulk_embedding(Settings(data_dir=args.data, index_dir=work, ocr="off", watch=False))
    embedder = _Timed(load_embedder(settings), args.stub)
    library = Library(settings, models=Models(settings, embedder=embedder))  # as `archivist ingest`
    report = Indexer(library.default).ingest()
    seconds = time.perf_counter() - started
    with library.default.views.reading() as view:
        chunks = view.store.count()
    library.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"machine": machine(), "stub": args.stub, "seconds": round(seconds, 1), "chunks": chunks,
            "chunks_embedded": report.chunks_embedded, "failed": report.failed,
            "embed_calls": embedder.calls, "embed_s": round(embedder.embed_s, 1),
            "embedder": f"{type(embedder._inner).__name__}, {getattr(embedder, 'device', 'cpu')}, "
                        f"{getattr(embedder, 'precision', '?')}",
            "files": sum(1 for p in args.data.rglob("*") if p.is_file()),
            "mb": round(sum(p.stat().st_size for p in args.data.rglob("*") if p.is_file()) / 1e6, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export")
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--collection", default="default")
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--vectors", type=Path)
    p = sub.add_parser("cpu")
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--sample", type=int, default=300)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("gpu")
    p.add_argument("--texts", type=Path, required=True)
    p.add_argument("--sample", type=int, default=300)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--slow-s", type=float, default=60.0, help="a pass slower than this is not repeated")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--vectors-dir", type=Path, required=True)
    p.add_argument("--variants", default="fp32:32,fp32:256,fp16:256,bf16:256,fp16:32",
                   help="dtype:batch, in order; the first is the reference (the project's path)")
    p.add_argument("--device", default="cuda", help="cpu: a check of this script, not a figure")
    p.add_argument("--limit", type=int, help="the first N texts only (a check)")
    p = sub.add_parser("compare")
    p.add_argument("--gpu-dir", type=Path, required=True)
    p.add_argument("--cpu", type=Path, required=True)
    p.add_argument("--stored", type=Path)
    p.add_argument("--parts", nargs="*", default=[])
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--stub", action="store_true")
    p.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = {"export": export, "cpu": cpu, "gpu": gpu, "compare": compare, "ingest": ingest}[args.cmd](args)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.cmd != "export":
        args.out.write_text(text + "\n")
    print(text if args.cmd != "gpu" else json.dumps({k: v for k, v in result.items() if k != "sample_indices"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
