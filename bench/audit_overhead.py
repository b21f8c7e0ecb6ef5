"""What the audit trail costs an ask: p50 latency with and without it, in one run, on one machine.

    .venv/bin/python bench/audit_overhead.py [--rounds 300] [--fake-embedder] [--json OUT]

Two libraries over the same documents (data/ and tests/answers/docs), each with its own index
folder, sharing one set of models:

- without: no encryption key and an audit log that records nothing (what Archivist did before
  the audit trail: answer records in plain text);
- with: ARCHIVIST_AUDIT_KEY_FILE and a signing key (AES-256-GCM sealing of the records and the
  log, a hash-chained event per question, a signed checkpoint every 100 events), SQLite files.

Asked alternately (without, with, without, ...) so that drift hits both alike, in-process
(Assistant.ask, what /v1/ask and `archivist ask` call; HTTP adds the same to both), on:

- cached: a question asked before, answered from its record (a read, a decryption, one event);
- extractive: a new question each time (a numbered variant of tests/answers/questions.dev.jsonl),
  answer mode extractive: retrieval, the evidence test, quotes, the record, one event; refusals
  included, as they come.  The model is not involved (a generated answer adds a "started" event,
  well under a millisecond, to seconds of generation).  Retrieval and the evidence test vary by
  tens of milliseconds from one ask to the next on a busy machine, which hides the difference, so:
- record: the one step that differs on an uncached ask, alone: saving the answer record (sealed,
  or plain) and appending its event (or not), with a real answer from the extractive round.

The question is embedded by the bundled all-MiniLM-L6-v2 unless --fake-embedder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import emit  # noqa: E402


class NoAuditLog:
    """An audit log that records nothing: the baseline."""

    keyring = signer = None

    def append(self, *args, **kwargs) -> int:
        return 0

    @contextlib.contextmanager
    def operation(self, *args, **kwargs):
        yield {}

    def close(self) -> None:
        pass


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(ms: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(ms), 3), "p90_ms": round(percentile(ms, 0.9), 3),
            "mean_ms": round(statistics.fmean(ms), 3), "n": len(ms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="asks of each kind per variant")
    parser.add_argument("--fake-embedder", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from ingest.indexer import Indexer
    from rag.audit.checkpoints import write_signing_keys
    from rag.core.offline import enforce_offline
    from rag.core.settings import Settings
    from rag.library import Library
    from rag.models.loaded import Models
    from rag.storage.sealing import write_key_file

    enforce_offline()
    root = Path(tempfile.mkdtemp(prefix="audit-overhead-"))
    try:
        data = root / "data"
        shutil.copytree(ROOT / "data", data)
        for doc in (ROOT / "tests" / "answers" / "docs").iterdir():
            shutil.copy(doc, data / doc.name)
        write_key_file(root / "audit.key")
        write_signing_keys(root / "signing.pem")
        base = Settings(data_dir=data, index_dir=root / "plain", watch=False)
        keyed = base.model_copy(update={"index_dir": root / "keyed"}).model_copy(update={
            "audit": base.audit.model_copy(update={"audit_key_file": root / "audit.key",
                                                   "audit_signing_key_file": root / "signing.pem"})})
        embedder = None
        if args.fake_embedder:
            from tests.fakes import FakeEmbedder

            embedder = FakeEmbedder(record=False)
        models = Models(base, embedder=embedder)
        libraries = {"without": Library(base, models, audit=NoAuditLog()),
                     "with": Library(keyed, models)}
        for library in libraries.values():
            Indexer(library.default).ingest()
        questions = [json.loads(line)["q"] for line in
                     (ROOT / "tests" / "answers" / "questions.dev.jsonl").read_text().splitlines()]
        assistants = {name: lib.default.assistant for name, lib in libraries.items()}
        for assistant in assistants.values():  # warm up, and put every question in the cache
            for q in questions:
                assistant.ask(q, mode="extractive")

        times: dict[str, dict[str, list[float]]] = {k: {"without": [], "with": []}
                                                     for k in ("cached", "extractive")}
        for i in range(args.rounds):
            for kind in ("cached", "extractive"):
                q = questions[i % len(questions)]
                question = q if kind == "cached" else f"{q} ({i})"
                for name in ("without", "with") if i % 2 else ("with", "without"):
                    started = time.perf_counter()
                    answer = assistants[name].ask(question, mode="extractive")
                    times[kind][name].append((time.perf_counter() - started) * 1000)
                    assert answer.cached == (kind == "cached"), (kind, name)
        from rag.answering.question_events import Asked
        from rag.audit.events import Actor

        times["record"] = {"without": [], "with": []}
        answer = assistants["with"].ask(questions[0], mode="extractive")
        provenance = libraries["with"].records_store().get_answer(answer.answer_id)["provenance"]
        for i in range(args.rounds * 3):
            for name in ("without", "with") if i % 2 else ("with", "without"):
                library = libraries[name]
                asked = Asked(library.audit, Actor.local_cli(), "ask", "default")
                started = time.perf_counter()
                answer_id = library.records_store().save_answer(
                    "default", questions[0], questions[0], answer, provenance, None)
                asked.answered(questions[0], answer.model_copy(update={"answer_id": answer_id}),
                               provenance)
                times["record"][name].append((time.perf_counter() - started) * 1000)
        events = libraries["with"].audit.count()
        result = {"cpu": cpu_name(), "embedder": "fake" if args.fake_embedder else
                  "all-MiniLM-L6-v2 (bundled)", "rounds": args.rounds, "audit_events": events}
        for kind, variants in times.items():
            shown = {name: summary(ms) for name, ms in variants.items()}
            shown["p50_overhead_ms"] = round(shown["with"]["p50_ms"] - shown["without"]["p50_ms"], 3)
            result[kind] = shown
        for library in libraries.values():
            library.close()
        return emit(result, args.json)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
