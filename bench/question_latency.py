"""One question's embedding on the CPU, with onnxruntime's threads spinning between operators or
sleeping, and what the spinning costs generation and bulk embedding beside it.

rag/models/onnx_embedder.py runs a single text on a session whose threads spin (and stop once it
is done) and batches on one whose threads sleep, both over one copy of the weights.  This bench
compares that ("as built") with every text on the sleeping session ("no spinning", the previous
behaviour), in one process, alternating rounds:

- one question: median and p90 ms over 20 English and Chinese evaluation questions;
- beside generation: the bundled chat model generating (2 threads) while questions arrive every
  50 ms (tokens/s and question ms), and while a batch of passages is embedded (tokens/s);
- memory: resident size after loading the embedder (the second session's cost).

    .venv/bin/python bench/question_latency.py [--model multilingual-e5-small] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402

EVAL = ROOT / "tests/eval"
PROMPT = "Summarise the history of the PostgreSQL database in detail, one sentence per fact:"


def _rss_mb() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024


def _questions() -> list[str]:
    out = []
    for name in ("questions.en.jsonl", "questions.zh.jsonl"):
        out += [json.loads(line)["q"] for line in (EVAL / name).read_text().splitlines()[:10]]
    return out


def _generate(llm, tokens: int, stop: threading.Event | None = None) -> float:
    """Tokens/s of one greedy generation (until `stop` is set, if given)."""
    made, started = 0, time.perf_counter()
    for _ in llm(PROMPT, max_tokens=tokens, temperature=0, stream=True):
        made += 1
        if stop is not None and stop.is_set():
            break
    return made / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from llama_cpp import Llama

    from rag.core.settings import Settings
    from rag.models.files import resolve_llm_model
    from rag.models.loaded import load_embedder

    before = _rss_mb()
    embedder = load_embedder(Settings(embed_model=args.model, embed_backend="onnx"))
    loaded = _rss_mb() - before
    spinning = embedder._single
    questions = _questions()
    passages = [p for p in (ROOT / "README.md").read_text().split("\n\n") if len(p) > 300][:48]
    llm = Llama(str(resolve_llm_model(None)), n_ctx=2048, n_threads=2, verbose=False)
    embedder.embed(questions[:2], "query")
    llm(PROMPT, max_tokens=8)

    variants = {"as built": spinning, "no spinning": embedder._session}
    result = {name: {"question_ms": [], "tokens_per_s_with_questions": [], "question_ms_beside_generation": [],
                     "tokens_per_s_with_bulk": [], "bulk_s_beside_generation": []} for name in variants}
    for round_ in range(args.rounds):
        names = list(variants) if round_ % 2 == 0 else list(reversed(variants))  # order evened out
        for name, single in ((n, variants[n]) for n in names):
            embedder._single = single
            row = result[name]
            for question in questions:
                started = time.perf_counter()
                embedder.embed([question], "query")
                row["question_ms"].append((time.perf_counter() - started) * 1e3)
            stop = threading.Event()

            def ask(row=row, stop=stop) -> None:
                i = 0
                while not stop.is_set():
                    started = time.perf_counter()
                    embedder.embed([questions[i % len(questions)]], "query")
                    row["question_ms_beside_generation"].append((time.perf_counter() - started) * 1e3)
                    i += 1
                    time.sleep(0.05)
            asker = threading.Thread(target=ask)
            asker.start()
            row["tokens_per_s_with_questions"].append(_generate(llm, 200))
            stop.set()
            asker.join()
            stop = threading.Event()
            speeds: list[float] = []
            generator = threading.Thread(target=lambda: speeds.append(_generate(llm, 10_000, stop)))
            generator.start()
            time.sleep(0.3)
            started = time.perf_counter()
            embedder.embed(passages, "passage")
            row["bulk_s_beside_generation"].append(time.perf_counter() - started)
            stop.set()
            generator.join()
            row["tokens_per_s_with_bulk"].extend(speeds)
    embedder._single = spinning
    summary = {"model": args.model, "rss_after_load_mb": loaded,
               "variants": {name: {key: statistics.median(values) for key, values in row.items()}
                            | {"question_ms_p90": sorted(row["question_ms"])[int(0.9 * len(row["question_ms"]))]}
                            for name, row in result.items()}}
    return emit(summary, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
