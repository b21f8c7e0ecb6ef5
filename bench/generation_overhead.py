"""Benchmark 4 of issue 14: the serving overhead of generation.

    .venv/bin/python bench/generation_overhead.py [--rounds 2] [--json OUT]

Time to first token and tokens/s of the bundled chat model (SmolLM2-135M) through `POST /v1/ask`
(streamed, generative mode, over HTTP on loopback, the app served by uvicorn in a process of its
own as `archivist serve` does) against a bare `llama_cpp.Llama` given the very same messages: the app's
generator records the chat it sends, and the bare model replays it with the same sampling, stop
strings, context size and threads.  The two alternate question by question, so they share the
machine's load.

- TTFT through /v1/ask is from sending the request to the first `token` event: it includes the
  search, the evidence test and prompt packing, which the bare model does not do.
- tokens/s is decode speed: (tokens - 1) / (last token - first token), streamed pieces counted.
The overhead on tokens/s is 1 - served / bare.
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

# Answerable from tests/corpus.py; each asked once per round with a round tag (no answer cache).
QUESTIONS = (
    "How many days of paid leave do employees get?",
    "When are travel expenses reimbursed?",
    "Which port does the metrics exporter listen on?",
    "What is the maximum load of the Orion crane?",
)


def timed_stream(pieces) -> dict:
    started = time.perf_counter()
    stamps = []
    for _ in pieces:
        stamps.append(time.perf_counter())
    return _figures(started, stamps)


def _figures(started: float, stamps: list[float]) -> dict:
    if not stamps:
        return {"ttft_ms": None, "tokens": 0, "tokens_per_s": None}
    decode = stamps[-1] - stamps[0]
    return {"ttft_ms": (stamps[0] - started) * 1000, "tokens": len(stamps),
            "tokens_per_s": (len(stamps) - 1) / decode if decode > 0 else None}


def http_stream(client, question: str) -> dict:
    started = time.perf_counter()
    stamps = []
    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True,
                                                 "mode": "generative"}) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if line == "event: token":
                stamps.append(time.perf_counter())
    return _figures(started, stamps)


def recorded(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def serve_child(root: Path, port: int) -> None:
    """The server: `archivist serve`'s app over the test corpus, in a process of its own (as in
    production, the client's work does not compete with it for the interpreter), recording each
    chat it sends to the model in root/calls.jsonl."""
    import uvicorn

    from ingest.indexer import Indexer
    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.library import Library
    from rag.models.files import resolve_llm_model
    from rag.models.generator import LlamaCppGenerator
    from rag.models.loaded import Models
    from service.app import create_app

    enforce_offline()
    calls = root / "calls.jsonl"

    class Recording(LlamaCppGenerator):
        def generate(self, messages, params, stop=None):
            with calls.open("a") as fh:
                fh.write(json.dumps({"messages": messages, "params": params.model_dump(),
                                     "stop": stop or [], "threads": self.n_threads}) + "\n")
            yield from super().generate(messages, params, stop)

    settings = Settings(data_dir=root / "data", index_dir=root / "index", watch=False)
    cfg = settings.llm
    generator = Recording(resolve_llm_model(None), n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, n_gpu_layers=0)
    library = Library(settings, Models(settings, generator=generator))
    Indexer(library.default).ingest()
    uvicorn.run(create_app(settings, library=library), host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_child(Path(args.serve[0]), int(args.serve[1]))
        return 0

    import httpx
    from llama_cpp import Llama

    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.models.files import resolve_llm_model
    from rag.models.gpu import usable_cpus
    from tests.corpus import write_corpus
    from tests.server import free_port, start_process

    enforce_offline()
    root = Path(tempfile.mkdtemp(prefix="archivist-bench-gen-"))
    write_corpus(root / "data")
    calls = root / "calls.jsonl"
    port = free_port()
    server = start_process([sys.executable, __file__, "--serve", str(root), str(port)],
                           f"http://127.0.0.1:{port}/v1/health", "the benchmark's server",
                           timeout_s=600, cwd=ROOT)
    model = resolve_llm_model(None)
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            http_stream(client, f"{QUESTIONS[0]} (warm-up)")
            llm = Settings().llm
            threads, n_ctx = llm.n_threads or usable_cpus(), llm.n_ctx  # as the server resolves them
            bare = Llama(model_path=str(model), n_ctx=n_ctx, n_threads=threads,
                         n_threads_batch=threads, n_gpu_layers=0, verbose=False)
            for r in range(args.rounds):
                for question in QUESTIONS:
                    before = len(recorded(calls))
                    served = http_stream(client, f"{question} (round {r})")
                    lines = recorded(calls)
                    if len(lines) == before:
                        print(f"[generation] skipped (no model call): {question}", file=sys.stderr)
                        continue
                    call = json.loads(lines[-1])
                    p = call["params"]
                    stream = bare.create_chat_completion(
                        messages=call["messages"], stream=True, temperature=p["temperature"],
                        top_p=p["top_p"], max_tokens=p["max_tokens"], repeat_penalty=p["repeat_penalty"],
                        seed=p["seed"], stop=call["stop"])
                    direct = timed_stream(part for part in stream
                                          if part["choices"][0]["delta"].get("content"))
                    rows.append({"question": question, "round": r, "served": served, "bare": direct})
            bare.close()
    finally:
        server.terminate()
        server.wait(timeout=60)

    def median(side, key):
        values = [row[side][key] for row in rows if row[side][key] is not None]
        return statistics.median(values) if values else None

    summary = {side: {k: median(side, k) for k in ("ttft_ms", "tokens_per_s", "tokens")}
               for side in ("served", "bare")}
    summary["threads"] = threads
    summary["model"] = model.name
    if summary["served"]["tokens_per_s"] and summary["bare"]["tokens_per_s"]:
        summary["tokens_per_s_overhead"] = 1 - summary["served"]["tokens_per_s"] / summary["bare"]["tokens_per_s"]
        # Per question, the ratio of the pair: less exposed to the load drifting between questions.
        ratios = [1 - row["served"]["tokens_per_s"] / row["bare"]["tokens_per_s"] for row in rows
                  if row["served"]["tokens_per_s"] and row["bare"]["tokens_per_s"]]
        summary["tokens_per_s_overhead_median_of_pairs"] = statistics.median(ratios)
    result = {"summary": summary, "runs": rows}
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
