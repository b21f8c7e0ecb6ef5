"""The embedding model under a server's threading: many request threads each embedding one
question, as concurrent searches do.

    .venv/bin/python bench/embed_threads.py [--threads 40] [--questions 3600] [--json]

Runs each way in a fresh process, on the real all-MiniLM-L6-v2:
- `caller`: every request thread runs the model itself, one at a time under a lock (before).
- `worker`: the embedder's own thread runs it, batching the questions that wait together and
  handing free heap back after each batch (`rag.models.embedder`, now).

Reports seconds, questions/s and the process's RSS after the model loaded, then after every
sixth of the questions: a plateau is fine, a slope is growth.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("how many days of paid leave do employees get when are travel expenses reimbursed "
         "which port does the metrics exporter listen on where do visitors park").split()


def measure(mode: str, threads: int, questions: int) -> dict:
    from bench.load import rss_mb
    from rag.models.embedder import SentenceTransformerEmbedder
    from rag.models.files import resolve_embed_model

    embedder = SentenceTransformerEmbedder(resolve_embed_model("all-MiniLM-L6-v2"),
                                           "all-MiniLM-L6-v2")
    lock = threading.Lock()
    if mode == "caller":
        def embed(texts):
            with lock:
                return embedder._encode(texts)
    else:
        embed = embedder.embed
    rng = random.Random(0)  # questions of 3 to 60 words, as users type them
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) + f" {i}"
             for i in range(questions)]
    embed(texts[:1])
    series = [(0, round(rss_mb(os.getpid()), 1))]
    start = time.perf_counter()
    step = max(1, questions // 6)
    with ThreadPoolExecutor(threads) as pool:
        for first in range(0, questions, step):
            list(pool.map(lambda t: embed([t]), texts[first:first + step]))
            series.append((min(questions, first + step), round(rss_mb(os.getpid()), 1)))
    seconds = time.perf_counter() - start
    return {"mode": mode, "threads": threads, "questions": questions,
            "seconds": round(seconds, 1), "per_s": round(questions / seconds, 1),
            "rss_mb": series}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=40)
    parser.add_argument("--questions", type=int, default=3600)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mode", choices=("caller", "worker"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:  # the child: one way, in a process of its own
        print(json.dumps(measure(args.mode, args.threads, args.questions)))
        return 0
    reports = []
    for mode in ("caller", "worker"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--threads",
                              str(args.threads), "--questions", str(args.questions)],
                             check=True, capture_output=True, text=True).stdout
        reports.append(json.loads(out.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(reports, indent=2))
        return 0
    for r in reports:
        print(f"{r['mode']:<7} {r['threads']} threads, {r['questions']} questions: "
              f"{r['seconds']} s ({r['per_s']}/s); RSS MB "
              + ", ".join(f"{n}: {mb:.0f}" for n, mb in r["rss_mb"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
