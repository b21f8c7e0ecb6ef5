"""How long a cached answer and a refusal take while the real chat model is busy answering
another question, over HTTP, with the real models (SmolLM2-135M, all-MiniLM-L6-v2).

    .venv/bin/python bench/cached_during_generation.py [--repeats 20]

Before the decide-first change every ask queued for the model first, so these waited for the
running generation (seconds) or got 429 when the queue was full.  Prints one JSON object; the
figures are medians over `--repeats` requests, each made while a generation is in flight.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHED = "What is the maximum load of the Orion crane?"
REFUSED = "How do I configure Patroni failover?"
LONG = "Explain everything the documents say about the Zephyr turbine, in detail."


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import httpx

    from ingest.indexer import Indexer
    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.library import Library
    from service.app import create_app
    from tests.corpus import write_corpus
    from tests.server import serve

    enforce_offline()
    root = Path(tempfile.mkdtemp(prefix="archivist-bench-"))
    write_corpus(root / "data")
    # max_queue 0: a request that needed the model while it is busy would get 429 at once.
    settings = Settings(data_dir=root / "data", index_dir=root / "index", watch=False,
                        max_queue=0, max_tokens=512)
    library = Library(settings)
    Indexer(library.default).ingest()
    app = create_app(settings, library=library)
    with serve(app) as url, httpx.Client(base_url=url, timeout=600) as client:
        started = time.perf_counter()
        client.post("/v1/ask", json={"question": CACHED}).raise_for_status()  # recorded
        fresh_s = time.perf_counter() - started
        timings: dict[str, list[float]] = {"cached": [], "refused": [], "generation": []}
        statuses: set[int] = set()
        for i in range(args.repeats):
            busy = threading.Thread(target=lambda: timings["generation"].append(_timed(
                client, {"question": f"{LONG} ({i})", "debug": True})))
            busy.start()
            while library.models.gate.running == 0 and busy.is_alive():
                time.sleep(0.005)
            # A new unanswerable question each round: a repeated one would come from its record.
            for kind, question in (("cached", CACHED), ("refused", f"{REFUSED} (node {i})")):
                started = time.perf_counter()
                reply = client.post("/v1/ask", json={"question": question})
                timings[kind].append(time.perf_counter() - started)
                statuses.add(reply.status_code)
                in_flight = library.models.gate.running == 1
                if not in_flight:
                    print(f"warning: the generation ended before the {kind} reply", file=sys.stderr)
            busy.join()
    result = {
        "requests": args.repeats,
        "statuses": sorted(statuses),
        "first_answer_s": round(fresh_s, 2),
        "generation_median_s": round(statistics.median(timings["generation"]), 2),
        "cached_during_generation_median_ms": round(statistics.median(timings["cached"]) * 1000, 1),
        "cached_during_generation_max_ms": round(max(timings["cached"]) * 1000, 1),
        "refusal_during_generation_median_ms": round(statistics.median(timings["refused"]) * 1000, 1),
    }
    print(json.dumps(result, indent=2))
    library.close()
    return 0


def _timed(client, body: dict) -> float:
    started = time.perf_counter()
    client.post("/v1/ask", json=body).raise_for_status()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
