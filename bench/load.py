"""Load test: many concurrent clients against a live server on loopback, for a bounded time.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 60] [--warm-up 30] [--fake] [--json]

Starts `archivist`'s HTTP app in a child process (uvicorn on a free loopback port) over the test
corpus (tests/corpus.py), with the real embedding model and the real small GGUF chat model
(`--fake`: the test suite's fake models, for a quick smoke run).  After one search, one ask and
one chat, and a warm-up of the same load (--warm-up seconds), it runs N client threads for T
seconds, each looping over search, ask and chat
(questions varied so that the answer cache does not answer them), then waits for requests still
in flight (each bounded by --timeout) and stops the server.

Reports requests/s per kind and overall, p50/p95/p99 latency per kind (of 2xx replies), the share
of 429s (queue full: the client waits --backoff seconds and goes on), every other error by
status, and the server's RSS: after the first requests, after the warm-up ("before"), after the
run, and sampled every 2 s in between.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = ("search", "ask", "chat")
QUESTIONS = (
    "How many days of paid leave do employees get?",
    "When are travel expenses reimbursed?",
    "Which port does the metrics exporter listen on?",
    "How many units of the Falcon drill are in stock?",
    "Where do visitors park?",
    "What does the turbine report say?",
    "What is in the budget?",
)


# --- the server (child process) ------------------------------------------------------------

def serve(root: Path, port: int, fake: bool) -> None:
    from rag.core.offline import enforce_offline

    enforce_offline()
    import uvicorn

    from ingest.indexer import Indexer
    from rag.core.settings import Settings
    from rag.library import Library
    from rag.models.loaded import Models
    from service.app import create_app
    from tests.corpus import write_corpus

    write_corpus(root / "data")
    overrides = {}
    if fake:
        from tests.fakes import FakeEmbedder, FakeGenerator

        # Not recording: the fakes' record of every call would itself grow with the run.
        embedder, generator = FakeEmbedder(record=False), FakeGenerator(record=False)
        overrides["min_score"] = 0.1
    else:  # as tests/conftest.py's real_embedder and real_generator
        from rag.models.embedder import SentenceTransformerEmbedder
        from rag.models.files import resolve_embed_model, resolve_llm_model
        from rag.models.generator import LlamaCppGenerator

        embedder = SentenceTransformerEmbedder(resolve_embed_model("all-MiniLM-L6-v2"),
                                               "all-MiniLM-L6-v2")
        generator = LlamaCppGenerator(resolve_llm_model(None), n_ctx=4096, n_threads=None,
                                      n_gpu_layers=0)
    settings = Settings(data_dir=root / "data", index_dir=root / "index", watch=False, **overrides)
    library = Library(settings, Models(settings, embedder=embedder, generator=generator))
    report = Indexer(library.default).ingest()
    if report.failed:
        print(f"ingest failures: {report.failures}", file=sys.stderr)
    app = create_app(settings, library=library)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the clients -----------------------------------------------------------------------------

def one_request(client, kind: str, question: str, conversation: str | None):
    body = {"question": question}
    if kind == "chat" and conversation:
        body["conversation_id"] = conversation
    start = time.perf_counter()
    try:
        reply = client.post(f"/v1/{kind}", json=body)
    except Exception as exc:  # noqa: BLE001 - every failure is a figure of the report
        return f"{type(exc).__name__}", time.perf_counter() - start, None, str(exc)[:200]
    elapsed = time.perf_counter() - start
    conv = reply.json().get("conversation_id") if kind == "chat" and reply.status_code == 200 else None
    detail = None if reply.status_code < 400 or reply.status_code == 429 else reply.text[:200]
    return reply.status_code, elapsed, conv, detail


def client_loop(base_url: str, index: int, deadline: float, timeout: float, backoff: float,
                results: list, lock: threading.Lock) -> None:
    import httpx

    rng = random.Random(index)
    conversation, turns, n = None, 0, 0
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        while time.monotonic() < deadline:
            kind = KINDS[(index + n) % len(KINDS)]
            n += 1
            # A varied question: the same text would be answered from the answer cache.
            question = f"{rng.choice(QUESTIONS)} (client {index}, request {n})"
            status, elapsed, conv, detail = one_request(client, kind, question, conversation)
            if kind == "chat":
                conversation, turns = (conv, turns + 1) if conv and turns < 3 else (None, 0)
            with lock:
                results.append((kind, status, elapsed, detail))
            if status == 429:
                time.sleep(backoff)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summarize(results: list, seconds: float) -> dict:
    by_kind: dict[str, dict] = {}
    statuses: Counter = Counter()
    errors: Counter = Counter()
    samples: dict[str, list] = defaultdict(list)
    for kind, status, elapsed, detail in results:
        statuses[str(status)] += 1
        if status == 200:
            samples[kind].append(elapsed)
        elif status != 429:
            errors[f"{kind} {status}: {detail}"] += 1
    for kind in KINDS:
        mine = [r for r in results if r[0] == kind]
        ok = samples[kind]
        by_kind[kind] = {
            "requests": len(mine), "ok": len(ok),
            "ok_per_s": round(len(ok) / seconds, 2),
            "429": sum(1 for r in mine if r[1] == 429),
            **{f"p{q}_s": (round(v, 3) if (v := percentile(ok, q)) is not None else None)
               for q in (50, 95, 99)},
        }
    total = len(results)
    return {"requests": total, "ok": sum(len(v) for v in samples.values()),
            "requests_per_s": round(total / seconds, 2),
            "ok_per_s": round(sum(len(v) for v in samples.values()) / seconds, 2),
            "share_429": round(statuses["429"] / total, 4) if total else 0.0,
            "statuses": dict(statuses), "errors": dict(errors), "kinds": by_kind}


def phase(base_url: str, clients: int, seconds: float, timeout: float, backoff: float,
          first_client: int = 0) -> tuple[list, int]:
    """`clients` threads loop for `seconds`; returns their results and how many never finished."""
    results: list = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(base_url, first_client + i, stop_at, timeout, backoff,
                                      results, lock))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:  # bounded: the last requests end within `timeout`
        thread.join(timeout=max(0.0, stop_at + timeout + 5 - time.monotonic()))
    with lock:
        return list(results), sum(t.is_alive() for t in threads)


class RssSampler(threading.Thread):
    """The server's RSS every `interval` seconds, as (seconds since start, MB, phase) rows: the
    shape (a plateau or a slope) says more than two end points."""

    def __init__(self, pid: int, interval: float = 2.0):
        super().__init__(daemon=True)
        self.pid, self.interval, self.series = pid, interval, []
        self._phase, self._done, self._t0 = "warm-up", threading.Event(), time.monotonic()

    def mark(self, phase: str) -> None:
        self._phase = phase

    def run(self) -> None:
        while True:
            try:
                mb = rss_mb(self.pid)
            except OSError:
                return
            self.series.append((round(time.monotonic() - self._t0, 1), round(mb, 1), self._phase))
            if self._done.wait(self.interval):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def run(clients: int = 50, seconds: float = 60, fake: bool = False, timeout: float = 120,
        backoff: float = 0.5, startup_timeout: float = 300, warm_up: float = 30) -> dict:
    import httpx

    from tests.server import free_port

    root = Path(tempfile.mkdtemp(prefix="archivist-load-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "w")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-child", str(root),
           "--port", str(port)] + (["--fake"] if fake else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n"
                                   + (root / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{base_url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        warm_start = time.perf_counter()
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            for kind in KINDS:
                reply = client.post(f"/v1/{kind}", json={"question": QUESTIONS[0]})
                if reply.status_code != 200:
                    raise RuntimeError(f"warm-up {kind}: {reply.status_code} {reply.text[:300]}")
        rss_first = rss_mb(server.pid)
        sampler = RssSampler(server.pid)
        sampler.start()
        # Warm-up under the same load: the server's worker threads, the allocator's per-thread
        # arenas and the embedder's batch buffers are created on first concurrent use, and
        # counting them as growth would hide a real leak among them.
        if warm_up:
            phase(base_url, clients, warm_up, timeout, backoff, first_client=clients)
        warm_up_s = time.perf_counter() - warm_start
        rss_before = rss_mb(server.pid)
        sampler.mark("run")

        start = time.monotonic()
        results, unfinished = phase(base_url, clients, seconds, timeout, backoff)
        elapsed = time.monotonic() - start
        rss_after = rss_mb(server.pid)
        sampler.stop()
        report = summarize(results, elapsed)
        report.update(clients=clients, seconds=seconds, elapsed_s=round(elapsed, 1),
                      models="fake" if fake else "real", warm_up_s=round(warm_up_s, 2),
                      rss_mb_first=round(rss_first, 1),
                      rss_mb_before=round(rss_before, 1), rss_mb_after=round(rss_after, 1),
                      rss_growth=round(rss_after / rss_before - 1, 4),
                      rss_mb_series=sampler.series, unfinished_clients=unfinished)
        return report
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def render(report: dict) -> str:
    lines = [f"{report['clients']} clients, {report['elapsed_s']} s, {report['models']} models: "
             f"{report['requests']} requests ({report['requests_per_s']}/s), "
             f"{report['ok']} ok ({report['ok_per_s']}/s), "
             f"429: {report['share_429']:.1%}",
             f"{'kind':<8}{'requests':>9}{'ok':>6}{'ok/s':>8}{'429':>6}"
             f"{'p50 s':>9}{'p95 s':>9}{'p99 s':>9}"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for kind, k in report["kinds"].items():
        lines.append(f"{kind:<8}{k['requests']:>9}{k['ok']:>6}{k['ok_per_s']:>8}{k['429']:>6}"
                     f"{fmt(k['p50_s']):>9}{fmt(k['p95_s']):>9}{fmt(k['p99_s']):>9}")
    lines.append(f"server RSS: {report['rss_mb_first']} MB after the first requests, "
                 f"{report['rss_mb_before']} MB after warm-up ({report['warm_up_s']} s), "
                 f"{report['rss_mb_after']} MB after the run ({report['rss_growth']:+.1%})")
    run_rows = [row for row in report["rss_mb_series"] if row[2] == "run"]
    if run_rows:
        step = max(1, len(run_rows) // 8)
        lines.append("RSS during the run (s: MB): " + ", ".join(
            f"{t:.0f}: {mb:.0f}" for t, mb, _ in run_rows[::step] + run_rows[-1:]))
    lines.append("other errors: " + (json.dumps(report["errors"], indent=1)
                                     if report["errors"] else "none"))
    if report["unfinished_clients"]:
        lines.append(f"clients still waiting at the end: {report['unfinished_clients']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warm-up", type=float, default=30,
                        help="seconds of the same load before the 'before' RSS reading")
    parser.add_argument("--fake", action="store_true", help="the test suite's fake models")
    parser.add_argument("--timeout", type=float, default=120, help="per request, seconds")
    parser.add_argument("--backoff", type=float, default=0.5, help="wait after a 429, seconds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        serve(args.serve_child, args.port, args.fake)
        return 0
    report = run(args.clients, args.seconds, args.fake, args.timeout, args.backoff,
                 warm_up=args.warm_up)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
