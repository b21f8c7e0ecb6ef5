"""Embedding speed against the machine's ceiling: torch vs ONNX fp32 vs ONNX int8 vs torch in
bf16 (on CPUs with AMX-BF16 only), threads and batching, on real chunks of the public corpus; and
one question's embedding, as a search does it.

    .venv/bin/python bench/embed_speed.py [--model multilingual-e5-small] [--files 40] [--json OUT]

The ceiling: a BERT layer costs (4 x hidden^2 attention projections + 2 x hidden x intermediate
FFN) x 2 FLOP per token (embeddings are lookups; attention scores add a little more, not
counted): all-MiniLM-L6-v2 (6 layers of 384/1536) 21.2 MFLOP per token, multilingual-e5-small
(12 layers) 42.5.  A dense fp32 matrix product of the model's own shapes (torch, all usable
cores) gives the tokens/s the arithmetic allows.  bf16 products run in AMX tiles where the CPU
has them, so the same probe in bf16 gives that variant's own ceiling.  Each variant embeds the
same chunks (Archivist's chunker, in the model's tokens, over the first --files pages of each half
of the corpus), twice, alternating with the others; the better pass counts.  tokens/s counts the
chunks' own tokens (what the model must see), not padding.  Each variant's vectors are compared
with torch's (cosine).  "question ms": the median of embedding each of 20 evaluation questions
alone, three times, after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402



def mflop_per_token(model_dir: Path) -> float:
    config = json.loads((model_dir / "config.json").read_text())
    hidden, inner = config["hidden_size"], config["intermediate_size"]
    return config["num_hidden_layers"] * (4 * hidden * hidden + 2 * hidden * inner) * 2 / 1e6


def gemm_gflops(threads: int, rounds: int = 20, dtype: str = "float32") -> float:
    """Matrix products of the model's FFN shape (a batch of 32 x 256 tokens), best of 3."""
    import torch

    torch.set_num_threads(threads)
    kind = getattr(torch, dtype)
    a, b = torch.randn(8192, 384, dtype=kind), torch.randn(384, 1536, dtype=kind)
    c, d = torch.randn(8192, 1536, dtype=kind), torch.randn(1536, 384, dtype=kind)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            a @ b
            c @ d
        best = max(best, 2 * 2 * 8192 * 384 * 1536 * rounds / (time.perf_counter() - started) / 1e9)
    return best


def corpus_chunks(files: int, name: str) -> tuple[dict[str, list[list[str]]], object]:
    """Chunk texts per file, as ingest makes them, per half of the corpus."""
    from bench.corpus import build_corpus
    from ingest.chunking import Chunker
    from ingest.parsers import parse_file
    from rag.core.settings import Settings
    from tokenizers import Tokenizer

    from rag.models.files import resolve_embed_model

    tok = Tokenizer.from_file(str(resolve_embed_model(name) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    count = lambda t: len(tok.encode(t, add_special_tokens=False).ids)  # noqa: E731
    cfg = Settings().chunking
    window = 256 if name == "all-MiniLM-L6-v2" else 512
    chunker = Chunker(count, window, cfg.chunk_tokens, cfg.chunk_overlap_tokens)
    corpus = build_corpus(ROOT / ".eval" / "corpus")
    out = {}
    for half in ("postgresql", "debian-reference"):
        # The Chinese chapters are 20-40 times larger than the English pages.
        paths = sorted((corpus / half).iterdir())[:files if half == "postgresql" else max(1, files // 20)]
        out[half] = [[c.embedding_text() for c in chunker.chunk(p.name, "x", parse_file(p, None))]
                     for p in paths]
    return out, count


def variants(threads: int, name: str):
    """name -> a function building the embedder (loaded once, outside the timing)."""
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.files import resolve_embed_model
    from rag.models.gpu import cpu_has_amx_bf16
    from rag.models.onnx_embedder import INT8_SHA256, OnnxEmbedder, export_fp32, int8_path
    from rag.models.torch_embedder import TorchBertEmbedder

    model = resolve_embed_model(name)
    fp32 = Path(tempfile.mkdtemp(prefix="archivist-onnx-")) / "model.onnx"  # exported afresh

    def onnx(path, batch=32, n=threads, sha=None):
        return lambda: OnnxEmbedder(path(), model, name, batch, n, sha)

    amx = cpu_has_amx_bf16()
    found = {
        "torch, batch 32": lambda: SentenceTransformerEmbedder(model, name),
        "lean torch BERT fp32, batch 8": lambda: TorchBertEmbedder(model, name, 8, bf16=False),
        "onnx fp32, batch 32": onnx(lambda: fp32 if fp32.exists() else export_fp32(model, fp32)),
        "onnx fp32, batch 8" + ("" if amx else " (default)"): onnx(lambda: fp32, batch=8),
        "onnx fp32, batch 8, 1 thread": onnx(lambda: fp32, batch=8, n=1),
    }
    if name == "all-MiniLM-L6-v2":  # the only int8 export that ships
        found["onnx int8, batch 8"] = onnx(int8_path, batch=8, sha=INT8_SHA256)
    if amx:  # without AMX, bf16 is emulated: minutes for nothing (ARCHIVIST_EMBED_BACKEND=auto skips it)
        found["torch bf16, batch 8 (default)"] = lambda: TorchBertEmbedder(model, name, 8)
        found["sentence-transformers bf16, batch 8"] = lambda: SentenceTransformerEmbedder(
            model, name, batch_size=8, bf16=True)
    return found


def question_ms(embedder, questions: list[str]) -> float:
    embedder.embed([questions[0]], "query")
    took = []
    for _ in range(3):
        for question in questions:
            started = time.perf_counter()
            embedder.embed([question], "query")
            took.append((time.perf_counter() - started) * 1e3)
    return statistics.median(took)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="an embedding model that ships here")
    parser.add_argument("--files", type=int, default=40, help="pages of each half of the corpus")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import numpy as np

    from rag.core.offline import enforce_offline
    from rag.models.gpu import cpu_flags, usable_cpus

    enforce_offline()
    threads = usable_cpus()
    from rag.models.files import resolve_embed_model

    per_token = mflop_per_token(resolve_embed_model(args.model))
    chunks, count = corpus_chunks(args.files, args.model)
    questions = [json.loads(line)["q"] for name in ("questions.en.jsonl", "questions.zh.jsonl")
                 for line in (ROOT / "tests/eval" / name).read_text(encoding="utf-8").splitlines()[:10]]
    tokens = {half: sum(count(t) for f in files for t in f) for half, files in chunks.items()}
    gflops = gemm_gflops(threads)
    ceiling = gflops * 1e3 / per_token
    bf16_gflops = gemm_gflops(threads, dtype="bfloat16")  # what AMX tiles allow, where there are some
    built = {name: make() for name, make in variants(threads, args.model).items()}
    times: dict[tuple[str, str], float] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for _ in range(2):
        for name, embedder in built.items():
            for half, files in chunks.items():
                embedder.embed(files[0][:4])  # warm-up
                started = time.perf_counter()
                vecs = [v for f in files for v in embedder.embed(f)]  # per file, as ingest does
                elapsed = time.perf_counter() - started
                times[name, half] = min(elapsed, times.get((name, half), float("inf")))
                vectors[name, half] = np.asarray(vecs, dtype=np.float32)
    latency = {name: question_ms(embedder, questions) for name, embedder in built.items()}
    rows = []
    for name in built:
        for half in chunks:
            cos = (vectors[name, half] * vectors["torch, batch 32", half]).sum(axis=1)
            tps = tokens[half] / times[name, half]
            rows.append({"variant": name, "corpus": half, "chunks": len(vectors[name, half]),
                         "tokens": tokens[half], "seconds": times[name, half], "tokens_per_s": tps,
                         "share_of_ceiling": tps / ceiling,
                         "share_of_bf16_ceiling": tps / (bf16_gflops * 1e3 / per_token),
                         "question_ms": latency[name],
                         "speedup_vs_torch": times["torch, batch 32", half] / times[name, half],
                         "cosine_to_torch_mean": float(cos.mean()), "cosine_to_torch_min": float(cos.min())})
    flags = cpu_flags()
    result = {"model": args.model, "threads": threads, "gemm_gflops": gflops, "mflop_per_token": per_token,
              "ceiling_tokens_per_s": ceiling, "bf16_gemm_gflops": bf16_gflops,
              "bf16_ceiling_tokens_per_s": bf16_gflops * 1e3 / per_token,
              "cpu_has": [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8", "amx_bf16")
                          if f in flags],
              "rows": rows}
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
