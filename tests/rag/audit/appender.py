"""`python -m tests.rag.audit.appender TARGET N [KEY SIGNING]`: a process appending N events (N=0:
until killed), printing each sequence number once committed.  What the crash and replica tests
kill and run side by side; ARCHIVIST_FAULT applies (rag/core/faults.py), and with APPENDER_GO
set it waits for that file to appear before its first append."""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path


def main() -> int:
    from rag.audit.checkpoints import Signer
    from rag.audit.events import Actor
    from rag.audit.log import AuditLog
    from rag.storage.sealing import Keyring

    target, count = sys.argv[1], int(sys.argv[2])
    keyring = Keyring.from_file(sys.argv[3]) if len(sys.argv) > 3 else Keyring()
    signer = Signer.from_file(sys.argv[4]) if len(sys.argv) > 4 else None
    log = AuditLog(target, keyring, signer, checkpoint_every=3)
    actor = Actor(f"writer-{os.getpid()}", "reader")
    go = os.environ.get("APPENDER_GO")  # a file whose appearance starts every writer at once
    while go and not Path(go).exists():
        time.sleep(0.01)
    for i in (range(count) if count else itertools.count()):
        seq = log.append(actor, "ask", "answered", "hr", {"i": i}, {"question": f"question {i}"})
        print(seq, flush=True)
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
