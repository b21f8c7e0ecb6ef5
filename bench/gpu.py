"""GPU offload, measured: generation tokens/s of the chat model with every layer on the CPU
against every layer on the GPU, and embedding chunks/s of the embedding model on the CPU
against CUDA, in one process, same prompt and settings each way.

    .venv/bin/python bench/gpu.py [--out bench/results/gpu-<machine>.json]

Needs only llama_cpp (and sentence_transformers + torch for the embedding part), so it also runs
on a bare GPU machine with the model files given by path:

    python3 bench/gpu.py --model SmolLM2-135M-Instruct.Q4_1.gguf --embed-model minilm/ --out x.json

Where llama.cpp has no GPU backend or no GPU is present, or torch sees no CUDA device, only the
CPU figures are measured (the GPU entries say why they are missing).  Generation is greedy over a
fixed prompt; each run re-reads the prompt and then generates --tokens tokens without stopping at
end-of-text (the speed of generating, not of this model's answer lengths), after one warm-up.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.models import gpu  # noqa: E402 - standard library only, see its docstring

PROMPT = ("You answer questions about a company's documents. Passage: Employees get 25 days of "
          "paid leave a year; unused days carry over until March 31. Travel expenses are "
          "reimbursed within 30 days of a complete claim with receipts. The metrics exporter "
          "listens on port 9464. Visitors park in the east lot and sign in at reception.\n"
          "Question: Summarise the passage in detail, one sentence per fact.\nAnswer:")
WORDS = ("how many days of paid leave do employees get when are travel expenses reimbursed which "
         "port does the metrics exporter listen on where do visitors park the backup runs nightly "
         "at two and keeps thirty copies on the storage server in the basement").split()


@contextlib.contextmanager
def stderr_into(path: Path):
    """Send fd 2 (llama.cpp's C logging) and sys.stderr to `path` for the block."""
    sys.stderr.flush()
    saved, saved_py = os.dup(2), sys.stderr
    with path.open("w") as f:
        os.dup2(f.fileno(), 2)
        sys.stderr = f
        try:
            yield
        finally:
            f.flush()
            sys.stderr = saved_py
            os.dup2(saved, 2)
            os.close(saved)


def generation(model: Path, n_gpu_layers: int, threads: int, tokens: int, runs: int) -> dict:
    from llama_cpp import Llama

    log = Path(tempfile.mkstemp(suffix=".log")[1])
    with stderr_into(log):  # verbose: llama.cpp's load log says how many layers it offloaded
        llm = Llama(model_path=str(model), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                    n_gpu_layers=n_gpu_layers, seed=0, verbose=True)
    lines = log.read_text(errors="replace").splitlines()
    log.unlink()
    prompt = llm.tokenize(PROMPT.encode())

    def once(n: int) -> dict:
        llm.reset()
        stream = llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True)
        t0 = time.perf_counter()
        next(stream)  # reads the prompt, then samples the first token
        t1 = time.perf_counter()
        for _ in range(n - 1):
            next(stream)
        t2 = time.perf_counter()
        stream.close()
        return {"prompt_tok_s": round(len(prompt) / (t1 - t0), 1),
                "gen_tok_s": round((n - 1) / (t2 - t1), 1)}

    with stderr_into(Path(os.devnull)):  # verbose also prints timings after each call
        once(16)
        measured = [once(tokens) for _ in range(runs)]
    layers = gpu.model_layers(llm.metadata)
    result = {
        "n_gpu_layers": n_gpu_layers, "threads": threads, "model_layers": layers,
        "layers_offloaded": gpu.layers_offloaded(n_gpu_layers, layers, gpu.llama_backend()),
        # llama.cpp's own account: "layer N assigned to device CUDA0", "offloaded 31/31 layers"
        "layers_by_device": dict(collections.Counter(
            line.rsplit("assigned to device ", 1)[1].split(",")[0] for line in lines
            if "assigned to device " in line)),
        "llama_cpp_log": [line.strip() for line in lines if "offloaded" in line],
        "vram_after_load": gpu.vram(),
        "prompt_tokens": len(prompt), "tokens": tokens, "runs": measured,
        "gen_tok_s_median": statistics.median(r["gen_tok_s"] for r in measured),
        "prompt_tok_s_median": statistics.median(r["prompt_tok_s"] for r in measured),
    }
    llm.close()
    return result


def chunks_of_text(n: int, words: int) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(n)]


def embedding(model_dir: Path, device: str, chunks: int, batch: int, runs: int) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    texts = chunks_of_text(chunks, 150)  # ~200 tokens: ARCHIVIST_CHUNK_TOKENS' default
    lengths = [len(ids) for ids in model.tokenizer(texts[:64])["input_ids"]]

    def once() -> float:
        t0 = time.perf_counter()
        model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    model.encode(texts[:batch * 2], batch_size=batch, show_progress_bar=False)  # warm-up
    seconds = [once() for _ in range(runs)]
    return {"device": device, "batch_size": batch, "chunks": chunks,
            "tokens_per_chunk": round(statistics.mean(lengths), 1),
            "torch_threads": torch.get_num_threads(), "seconds": [round(s, 3) for s in seconds],
            "chunks_per_s": round(chunks / statistics.median(seconds), 1)}


def machine() -> dict:
    """Versions from package metadata: this process imports neither llama_cpp nor torch (see
    main)."""
    from importlib import metadata

    info = {"python": platform.python_version(), "cpus": gpu.usable_cpus(), "cpu": platform.processor()}
    if Path("/proc/cpuinfo").exists():
        info["cpu"] = next((line.split(":", 1)[1].strip() for line in
                            Path("/proc/cpuinfo").read_text().splitlines()
                            if line.startswith("model name")), info["cpu"])
    for dist in ("llama_cpp_python", "torch", "sentence-transformers"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = None
    info["gpus"] = gpu.vram()
    return info


def default_model() -> Path:
    from rag.models.files import resolve_llm_model

    return resolve_llm_model(None)


def default_embed_model() -> Path:
    from rag.models.files import resolve_embed_model

    return resolve_embed_model("all-MiniLM-L6-v2")


def generation_part(args: argparse.Namespace) -> dict:
    model = args.model or default_model()
    backend = gpu.llama_backend()
    part = {"llama_cpp": {"backend": backend, "gpu_offload": gpu.gpu_offload_supported(),
                          "system_info": gpu.system_info(), "gpu_present": gpu.gpu_present(),
                          "auto_layers_resolve_to": gpu.resolve_gpu_layers(gpu.AUTO)},
            "model": model.name, "vram_before": gpu.vram(),
            "generation": {"cpu": generation(model, 0, args.threads, args.tokens, args.runs)}}
    if part["llama_cpp"]["auto_layers_resolve_to"] != 0:
        part["generation"]["gpu"] = generation(model, -1, args.threads, args.tokens, args.runs)
    else:
        part["generation"]["gpu"] = f"not measured: backend {backend}, GPU {gpu.gpu_present()}"
    return part


def embedding_part(args: argparse.Namespace) -> dict:
    embed_dir = args.embed_model or default_embed_model()
    runs = [embedding(embed_dir, "cpu", args.chunks, 32, args.runs)]
    if gpu.torch_cuda():
        runs += [embedding(embed_dir, "cuda", args.chunks, b, args.runs) for b in (32, 256)]
    return {"embedding": {"model": embed_dir.name, "runs": runs}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="GGUF file (default: the bundled SmolLM2)")
    ap.add_argument("--embed-model", type=Path, help="sentence-transformers directory "
                    "(default: the bundled all-MiniLM-L6-v2)")
    ap.add_argument("--threads", type=int, default=gpu.usable_cpus())
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=2048)
    ap.add_argument("--skip-embedding", action="store_true")
    ap.add_argument("--part", choices=("generation", "embedding"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    if args.part:  # a child: one part, JSON on stdout's last line
        result = generation_part(args) if args.part == "generation" else embedding_part(args)
        print(json.dumps(result), flush=True)
        return
    # Each part in a process of its own: on the H200 a CUDA build of llama.cpp and CUDA torch in
    # one process crashed, in either import order (README, "A stronger model, or a GPU").
    report: dict = {"machine": machine(), "params": {"threads": args.threads, "tokens": args.tokens,
                                                     "runs": args.runs, "chunks": args.chunks}}
    parts = ["generation"] + ([] if args.skip_embedding else ["embedding"])
    for part in parts:
        cmd = [sys.executable, __file__, "--part", part, "--threads", str(args.threads),
               "--tokens", str(args.tokens), "--runs", str(args.runs), "--chunks", str(args.chunks)]
        cmd += ["--model", str(args.model)] if args.model else []
        cmd += ["--embed-model", str(args.embed_model)] if args.embed_model else []
        child = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        lines = child.stdout.strip().splitlines()
        if child.returncode != 0 or not lines:
            report[part] = f"failed: exit status {child.returncode}"
            continue
        report.update(json.loads(lines[-1]))
        print(lines[-1], flush=True)
    if args.skip_embedding:
        report["embedding"] = "skipped (--skip-embedding)"
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
