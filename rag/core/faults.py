"""Deterministic crash points for testing that writers (ingest, the audit log) survive being killed.

`ARCHIVIST_FAULT=point:n` makes the process kill itself with SIGKILL the n-th time (1-based) it
reaches `point`; unset (the normal case), `reach()` does nothing.  SIGKILL rather than an
exception: nothing gets to clean up, flush or roll back, which is what a power cut or the OOM
killer does to a real ingest.  Read on every call (not at import) so tests can set it per run.
"""

from __future__ import annotations

import os
import signal

# Every point, named here (the lowest layer) so that one ARCHIVIST_FAULT serves every writer.
INGEST_POINTS = ("after_parse", "after_embed", "after_upsert", "after_lexical", "after_stale_delete",
                 "before_manifest")  # ingest/pipeline.py
AUDIT_POINTS = ("audit_before_append", "audit_after_insert", "audit_after_checkpoint",
                "audit_after_commit")  # rag/audit/log.py: around the one transaction of an append
POINTS = INGEST_POINTS + AUDIT_POINTS

_reached: dict[str, int] = {}


def reach(point: str) -> None:
    spec = os.environ.get("ARCHIVIST_FAULT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name not in POINTS:  # a typo would otherwise make a crash test pass without crashing
        raise ValueError(f"ARCHIVIST_FAULT={spec!r}: unknown point; known: {', '.join(POINTS)}")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
