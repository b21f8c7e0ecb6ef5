"""Benchmark 5 of issue 14: peak RSS of `archivist serve` with the defaults, idle and under 4
concurrent clients.

    .venv/bin/python bench/serve_rss.py [--clients 4] [--seconds 60] [--json OUT]

Indexes the test corpus (tests/corpus.py) with `archivist ingest`, then starts `archivist serve`
(defaults: the bundled SmolLM2-135M and all-MiniLM-L6-v2, folder watching on) as its own process
and reads its memory from /proc: VmRSS when idle after start-up and one answered question, then
the peak (VmHWM, the kernel's high-water mark, so no short peak is missed between samples) while
N clients loop over /v1/ask, /v1/search and /v1/chat with questions that are never repeated (so
the answer cache does not answer them).  Child processes of the server are added in.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402

from bench.load import QUESTIONS  # noqa: E402


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid] + [p for c in children for p in _tree(int(c))]


def tree_mb(pid: int, field: str) -> float:
    return sum(_status_kb(p, field) for p in _tree(pid)) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import httpx

    from tests.corpus import write_corpus
    from tests.server import free_port, start_process

    root = Path(tempfile.mkdtemp(prefix="archivist-bench-rss-"))
    write_corpus(root / "data")
    env = {**os.environ, "ARCHIVIST_DATA_DIR": str(root / "data"),
           "ARCHIVIST_INDEX_DIR": str(root / "index"), "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "service.cli"]
    subprocess.run(cli + ["ingest"], env=env, check=True, cwd=root, stdout=subprocess.DEVNULL)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_process(cli + ["serve", "--port", str(port)], f"{url}/v1/health", "archivist serve",
                           timeout_s=300, env=env, cwd=root)
    errors: list[str] = []
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            client.post("/v1/ask", json={"question": QUESTIONS[0]}).raise_for_status()
            time.sleep(3)
            idle = tree_mb(server.pid, "VmRSS")
            idle_peak = tree_mb(server.pid, "VmHWM")

            stop = time.monotonic() + args.seconds
            counts = {"requests": 0}

            def worker(n: int) -> None:
                i = 0
                with httpx.Client(base_url=url, timeout=600) as c:
                    while time.monotonic() < stop:
                        kind = ("ask", "search", "chat")[i % 3]
                        q = f"{QUESTIONS[i % len(QUESTIONS)]} (client {n}, {i})"
                        r = c.post(f"/v1/{kind}", json={"question": q})
                        if r.status_code >= 400 and r.status_code != 429:
                            errors.append(f"{kind} {r.status_code}")
                        counts["requests"] += 1
                        i += 1

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            samples = []
            while any(t.is_alive() for t in threads):
                samples.append(round(tree_mb(server.pid, "VmRSS"), 1))
                time.sleep(1)
            peak = tree_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=60)
    result = {"idle_rss_mb": idle, "idle_peak_mb": idle_peak, "load_peak_mb": peak,
              "load_rss_samples_mb": samples, "clients": args.clients, "seconds": args.seconds,
              "requests": counts["requests"], "errors": errors[:20]}
    return emit(result, args.json)


if __name__ == "__main__":
    sys.exit(main())
