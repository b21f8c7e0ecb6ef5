"""The scaled-out deployment against the embedded one, measured on loopback in one run.

    .venv/bin/python bench/scale_out.py [--pages 200] [--llama-server PATH] [--seconds 30]
                                        [--public] [--json]

Real servers, started here: `chroma run`, a PostgreSQL cluster (Debian's postgresql, fsync on, as
in production) and a model server with the bundled chat model: llama.cpp's `llama-server
--parallel 2` when --llama-server names its binary (two generations at once), else
`python -m llama_cpp.server` (one at a time).  Every Archivist process is the real CLI
(`archivist ingest`, `archivist serve`, `archivist eval`), configured by environment variables
only, each with its own folders, as on separate hosts.

1. Ingest: the same corpus (the first --pages pages of the PostgreSQL documentation and two
   chapters of the Chinese Debian Reference, bench/corpus.py) ingested embedded and into the
   servers; wall time and chunks, and the ratio.
2. Throughput: 4 clients for --seconds each against 1 replica, then against 2 replicas (clients
   spread over them), searching, then asking (generative mode, 64-token answers: the model
   server's share); requests/s and p50/p95 latency.
3. --public: the public evaluation set (tests/eval, the full corpus; a full ingest, about
   10 minutes on 2 cores) ingested embedded, moved onto the servers with `archivist export` and
   `import`, and evaluated in both modes: hit@1, hit@5, MRR@10 must agree.

Writes bench/results/scale-out.json.  On 2 cores, the replicas, the servers and the load share
the same CPUs: a second replica can only help where one leaves a core idle.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from tests.chroma_server import ChromaServer  # noqa: E402
from tests.model_server import LlamaServer, ModelServer  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402
from tests.replica import Replica, run_cli  # noqa: E402

EVAL_SETS = [ROOT / "tests/eval/questions.en.jsonl", ROOT / "tests/eval/questions.zh.jsonl",
             ROOT / "tests/eval/questions.none.jsonl"]
CLIENTS = 4
OUT = ROOT / "bench" / "results" / "scale-out.json"


def small_corpus(dest: Path, pages: int) -> Path:
    full = build_corpus(ROOT / ".eval" / "corpus")
    (dest / "postgresql").mkdir(parents=True)
    for path in sorted((full / "postgresql").glob("*.html"))[:pages]:
        shutil.copy2(path, dest / "postgresql" / path.name)
    (dest / "debian-reference").mkdir()
    for path in sorted((full / "debian-reference").glob("*.html"))[:2]:
        shutil.copy2(path, dest / "debian-reference" / path.name)
    return dest


def timed_ingest(host: Path, corpus: Path, **settings: str) -> dict:
    shutil.copytree(corpus, host / "data")
    started = time.perf_counter()
    done = run_cli(host, "ingest", "--json", timeout_s=4 * 3600, **settings)
    seconds = time.perf_counter() - started
    report = json.loads(done.stdout)
    return {"seconds": round(seconds, 1), "chunks": report["chunks_total"],
            "files": report["added"], "failed": report["failed"]}


def rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def storage(chroma: ChromaServer, db_url: str, chunks: int) -> dict:
    """Disk used by the servers for this index, and per million chunks at that rate."""
    import psycopg

    chroma_bytes = sum(p.stat().st_size for p in chroma.path.rglob("*") if p.is_file())
    with psycopg.connect(db_url) as conn:
        # less what an empty database takes (template1), which a larger index does not repeat
        pg_bytes = conn.execute("SELECT pg_database_size(current_database()) - "
                                "pg_database_size('template1')").fetchone()[0]
    per_million = 1e6 / max(chunks, 1) / 2**30
    return {"chroma_mb": round(chroma_bytes / 2**20, 1), "postgres_mb": round(pg_bytes / 2**20, 1),
            "chroma_gb_per_million_chunks": round(chroma_bytes * per_million, 2),
            "postgres_gb_per_million_chunks": round(pg_bytes * per_million, 2)}


def load(urls: list[str], kind: str, seconds: float, questions: list[str]) -> dict:
    """CLIENTS threads, client i on urls[i % len(urls)], for `seconds`."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(timeout=300) as http:
            n = i
            while time.monotonic() < deadline:
                body = {"question": questions[n % len(questions)], "top_k": 5}
                if kind == "ask":
                    body["mode"] = "generative"
                n += CLIENTS
                started = time.perf_counter()
                reply = http.post(f"{urls[i % len(urls)]}/v1/{kind}", json=body)
                with lock:
                    if reply.status_code == 200:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors.append(reply.status_code)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) \
            if latencies else None

    return {"requests_per_s": round(len(latencies) / elapsed, 2), "ok": len(latencies),
            "errors": errors[:10], "p50_ms": pct(0.5), "p95_ms": pct(0.95)}


def throughput(work: Path, corpus: Path, shared: dict, seconds: float,
               servers: dict[str, int]) -> dict:
    """Search, then ask, load on 1 and 2 replicas; the processes' RSS afterwards."""
    questions = [json.loads(line)["q"] for path in EVAL_SETS[:2]
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    hosts = []
    for name in ("r1", "r2"):
        shutil.copytree(corpus, work / name / "data")  # each host's own copy of the documents
        hosts.append(work / name)
    # max_tokens 64: the answers' length, not the model, is what a longer run would measure
    settings = {**shared, "max_tokens": "64", "max_queue": "16", "log_format": "json"}
    replicas = [Replica(host, **settings).start() for host in hosts]
    try:
        result = {}
        for kind in ("search", "ask"):
            urls = [r.url for r in replicas]
            for u in urls:  # warm: first requests load what each replica loads lazily
                httpx.post(f"{u}/v1/{kind}", json={"question": questions[0], "mode": "generative"}
                           if kind == "ask" else {"question": questions[0]}, timeout=300)
            # each phase its own half of the questions: answers are cached in the shared
            # database, so a question asked before would be answered from the cache
            result[kind] = {"1 replica": load(urls[:1], kind, seconds, questions[0::2]),
                            "2 replicas": load(urls, kind, seconds, questions[1::2])}
        pids = {**servers, **{f"replica {i + 1}": r.pid for i, r in enumerate(replicas)}}
        result["rss_mb_after_load"] = {name: rss_mb(pid) for name, pid in pids.items()}
        return result
    finally:
        for r in replicas:
            r.stop()


def public_figures(work: Path, postgres: PostgresServer) -> dict:
    """The public set embedded, then moved onto a Chroma server of its own and a new database."""
    chroma = ChromaServer(work / "chroma-public").start()
    try:
        return _public_figures(work, {"chroma_url": chroma.url,
                                      "db_url": postgres.create_database("public")})
    finally:
        chroma.stop()


def _public_figures(work: Path, shared: dict) -> dict:
    corpus = build_corpus(ROOT / ".eval" / "corpus")
    embedded, served = work / "public-embedded", work / "public-served"
    embedded.mkdir()
    served.mkdir()
    ingest = timed_ingest(embedded, corpus)
    run_cli(embedded, "export", str(work / "public.tar.gz"), timeout_s=3600)
    (served / "data").symlink_to(embedded / "data")
    started = time.perf_counter()
    run_cli(served, "import", str(work / "public.tar.gz"), timeout_s=3600, **shared)
    moved = time.perf_counter() - started
    figures = {}
    for name, host, settings in (("embedded", embedded, {}), ("servers", served, shared)):
        done = run_cli(host, "eval", "--json", *map(str, EVAL_SETS), timeout_s=3600, **settings)
        figures[name] = {r["name"]: {k: r[k] for k in ("hit_at_1", "hit_at_5", "mrr_at_10",
                                                       "refused_unanswerable")}
                         for r in json.loads(done.stdout)}
    return {"ingest_embedded": ingest, "import_to_servers_s": round(moved, 1), **figures}


def save(report: dict) -> None:
    """After each part: a long run that fails late keeps what it measured."""
    OUT.write_text(json.dumps(report, indent=2) + "\n")


def run(pages: int, llama_server: Path | None, seconds: float, public: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="archivist-scale-"))
    chroma = ChromaServer(work / "chroma").start()
    postgres = PostgresServer(durable=True).start()
    model = (LlamaServer(llama_server) if llama_server else ModelServer()).start()
    try:
        corpus = small_corpus(work / "corpus", pages)
        shared = {"chroma_url": chroma.url, "db_url": postgres.create_database("archivist"),
                  "llm_url": model.url, "llm_parallel": "2" if llama_server else "1"}
        mb = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file()) / 1e6
        (work / "embedded").mkdir()
        (work / "servers").mkdir()
        embedded = timed_ingest(work / "embedded", corpus)
        servers = timed_ingest(work / "servers", corpus, chroma_url=chroma.url,
                               db_url=shared["db_url"])
        report = {"corpus_mb": round(mb, 1), "pages": pages,
                  "model_server": "llama-server --parallel 2" if llama_server else "llama_cpp.server",
                  "ingest": {"embedded": embedded, "servers": servers,
                             "servers_vs_embedded": round(servers["seconds"] / embedded["seconds"], 2)},
                  "storage": storage(chroma, shared["db_url"], servers["chunks"])}
        save(report)
        report["throughput"] = throughput(work, corpus, shared, seconds,
                                          {"chroma": chroma.pid, "model server": model.pid})
        save(report)
        if public:
            report["public"] = public_figures(work, postgres)
            save(report)
        return report
    finally:
        model.stop()
        postgres.stop()
        chroma.stop()
        shutil.rmtree(work, ignore_errors=True)


def render(report: dict) -> str:
    ing = report["ingest"]
    lines = [f"Ingest of {report['corpus_mb']} MB ({ing['embedded']['chunks']} chunks): embedded "
             f"{ing['embedded']['seconds']} s, servers {ing['servers']['seconds']} s "
             f"({ing['servers_vs_embedded']}x)", "",
             f"| 4 clients, model server: {report['model_server']} | 1 replica | 2 replicas |",
             "|---|---|---|"]
    for kind in ("search", "ask"):
        rows = report["throughput"][kind]
        cells = [f"{r['requests_per_s']}/s (p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms)"
                 for r in rows.values()]
        lines.append(f"| {kind} | {' | '.join(cells)} |")
    st, rss = report["storage"], report["throughput"]["rss_mb_after_load"]
    lines += ["", f"Storage: Chroma {st['chroma_mb']} MB ({st['chroma_gb_per_million_chunks']} GB "
              f"per million chunks), PostgreSQL {st['postgres_mb']} MB "
              f"({st['postgres_gb_per_million_chunks']} GB per million chunks)",
              "RSS after the load (MB): " + ", ".join(f"{k} {v}" for k, v in rss.items())]
    if "public" in report:
        lines += ["", "| public set | hit@1 | hit@5 | MRR@10 | unanswerable refused |", "|---|---|---|---|---|"]
        for mode in ("embedded", "servers"):
            for name, f in report["public"][mode].items():
                lines.append(f"| {mode}: {name} | {f['hit_at_1']:.3f} | {f['hit_at_5']:.3f} | "
                             f"{f['mrr_at_10']:.3f} | {f['refused_unanswerable']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--public", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.pages, args.llama_server, args.seconds, args.public)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
