"""The catalogued chat models side by side on the public evaluation set (issue: model repository).

    .venv/bin/python bench/compare_models.py [--limit N] [MODEL.gguf ...]

For each model (default: the bundled SmolLM2 and every catalogued model in ARCHIVIST_MODELS_DIR,
`archivist models pull NAME` to get one): generation speed of a bare llama.cpp on a fixed prompt
with the threads this process may use, then `archivist eval --answers --mode generative` on the
public set (`make eval`'s index: ARCHIVIST_DATA_DIR / ARCHIVIST_INDEX_DIR, default .eval/corpus and
.eval/index). Generative mode, because it shows what each model writes before the quoted-answer
fallback hides it. Refusals are decided before the model is called, so they are the same for every
model. Prints a Markdown table and writes bench/results/models-compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SETS = ["questions.en.jsonl", "questions.zh.jsonl", "questions.none.jsonl"]
PROMPT = [{"role": "system", "content": "Answer from the passage."},
          {"role": "user", "content": "Passage: The rescue launch, named Petrel, is crewed by two "
           "qualified volunteers whenever dinghies are out. Its radio call sign is Harbour Light "
           "One, on VHF channel 72.\n\nQuestion: Who crews the rescue launch, and on which channel "
           "can it be reached? Explain in detail."}]


def tokens_per_s(path: Path, runs: int = 3, max_tokens: int = 128) -> dict:
    from llama_cpp import Llama

    from rag.models.generator import usable_cpus

    threads = usable_cpus()
    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=0, verbose=False)
    try:
        llm.create_chat_completion(messages=PROMPT, max_tokens=8, seed=0)  # warm-up
        rates = []
        for run in range(runs):
            started = time.perf_counter()
            out = llm.create_chat_completion(messages=PROMPT, max_tokens=max_tokens, seed=run,
                                             temperature=0.7)
            rates.append(out["usage"]["completion_tokens"] / (time.perf_counter() - started))
    finally:
        llm.close()
    return {"threads": threads, "tokens_per_s": round(statistics.median(rates), 1)}


def limited(src: Path, dest: Path, limit: int | None) -> Path:
    if not limit:
        return src
    lines = [line for line in src.read_text().splitlines() if line.strip()][:limit]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def answers(path: Path, sets: list[Path]) -> list[dict]:
    env = {**os.environ, "ARCHIVIST_LLM_MODEL": str(path), "ARCHIVIST_WATCH": "false",
           "ARCHIVIST_DATA_DIR": os.environ.get("ARCHIVIST_DATA_DIR", str(ROOT / ".eval/corpus")),
           "ARCHIVIST_INDEX_DIR": os.environ.get("ARCHIVIST_INDEX_DIR", str(ROOT / ".eval/index"))}
    out = subprocess.run([str(Path(sys.executable).parent / "archivist"), "eval", *map(str, sets),
                          "--top-k", "4", "--answers", "--mode", "generative", "--json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return [r for r in json.loads(out) if "supported_sentences" in r]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--limit", type=int, help="first N questions of each set (quick look)")
    parser.add_argument("--speed-only", action="store_true", help="generation speed alone")
    args = parser.parse_args()

    from rag.core.settings import load_settings
    from rag.models.catalog import load_catalog
    from rag.models.repository import ModelRepository

    settings = load_settings()
    known = set(load_catalog())
    paths = args.models or [m.path for m in ModelRepository(settings.models_dir).files()
                            if m.name in known]
    work = ROOT / "bench" / "results"
    scratch = Path(tempfile.mkdtemp(prefix="compare-models-"))
    sets = [limited(ROOT / "tests" / "eval" / name, scratch / name, args.limit) for name in SETS]
    rows = []
    for path in paths:
        print(f"{path.name}: generation speed ...", file=sys.stderr)
        speed = tokens_per_s(path)
        if args.speed_only:
            print(f"{path.name}: {speed['tokens_per_s']} tokens/s on {speed['threads']} threads")
            continue
        print(f"{path.name}: answering the public set ...", file=sys.stderr)
        rows.append({"model": path.name, **speed, "reports": answers(path, sets)})
    if args.speed_only:
        return 0
    (work / "models-compare.json").write_text(json.dumps(
        {"limit": args.limit, "mode": "generative", "rows": rows}, indent=2) + "\n")
    print("| model | tokens/s (threads) | set | refused (unanswerable / answerable) "
          "| supported sentences | citation precision | median answer |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for r in row["reports"]:
            unans = r.get("refused_unanswerable")
            ans = r.get("refused_answerable")
            print(f"| {row['model']} | {row['tokens_per_s']} ({row['threads']}) | {r['name']} | "
                  f"{'-' if unans is None else f'{unans:.0%}'} / {'-' if ans is None else f'{ans:.0%}'} | "
                  f"{_pct(r.get('supported_sentences'))} | {_pct(r.get('citation_precision'))} | "
                  f"{r.get('answer_p50_s')} s |")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    raise SystemExit(main())
