"""How long `archivist audit verify` takes over a large audit log (issue 27's target: 100,000 events
in 5 s or less).

    .venv/bin/python bench/audit_verify.py [--events 100000] [--json OUT]

The log is built with the real AuditLog.append (one transaction per event, as in production):
sealed question-and-answer payloads of a few hundred bytes, an Ed25519-signed checkpoint every
100 events.  Then it is verified twice without the encryption key, with the public key:

- in-process (rag.audit.reading.verify_log: the chain walk itself);
- `archivist audit verify --public-key KEY.pub` (python -m service.cli) in a fresh process, as an auditor runs it (Python
  start-up and imports included), timed from outside.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit_overhead import cpu_name  # noqa: E402
from bench.report import emit  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="audit-verify-"))
    try:
        return run(root, args.events, args.json)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, events: int, out: Path | None) -> int:
    from rag.audit.checkpoints import Signer, Verifier, write_signing_keys
    from rag.audit.events import Actor
    from rag.audit.log import AuditLog
    from rag.audit.reading import verify_log
    from rag.storage.sealing import Keyring, write_key_file

    index = root / "index"
    index.mkdir()
    write_key_file(root / "audit.key")
    write_signing_keys(root / "signing.pem")
    log = AuditLog(index / "audit.sqlite3", Keyring.from_file(root / "audit.key"),
                   Signer.from_file(root / "signing.pem"), checkpoint_every=100)
    actor = Actor("1a2b3c4d", "reader", "req")
    answer = "Members may borrow up to 8 books for 21 days; renewals are allowed twice [1]. " * 3
    started = time.perf_counter()
    for i in range(events):
        log.append(actor, "ask", "answered", "default",
                   {"answer_id": f"{i:032x}", "passages": [{"chunk_id": f"c{i}", "content_hash": "0" * 64,
                                                            "source": "library-rules.md", "page": None}],
                    "index_version": "v1", "llm_model": "SmolLM2-135M-Instruct.Q4_1.gguf"},
                   {"question": f"How many books may a member borrow, case {i}?", "answer": answer})
    build_s = time.perf_counter() - started
    log.close()

    log = AuditLog(index / "audit.sqlite3")  # the auditor's: no keyring, no signer
    started = time.perf_counter()
    report = verify_log(log, Verifier.from_file(root / "signing.pem.pub"))
    in_process_s = time.perf_counter() - started
    log.close()
    assert report.ok and report.events == events, report.problem

    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_INDEX_DIR=str(index), ARCHIVIST_DATA_DIR=str(root), PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "service.cli", "audit", "verify",
                           "--public-key", str(root / "signing.pem.pub")],
                          env=env, cwd=root, capture_output=True, text=True)
    cli_s = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    size_mb = sum(p.stat().st_size for p in index.iterdir()) / 1e6
    return emit({"cpu": cpu_name(), "events": events, "checkpoints": report.checkpoints,
                 "log_mb": round(size_mb, 1), "build_s": round(build_s, 1),
                 "append_ms": round(build_s / events * 1000, 3),
                 "verify_in_process_s": round(in_process_s, 2),
                 "archivist_audit_verify_s": round(cli_s, 2),
                 "cli_output": done.stdout.strip().splitlines()}, out)


if __name__ == "__main__":
    sys.exit(main())
