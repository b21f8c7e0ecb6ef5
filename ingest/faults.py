"""Ingest's crash points (ARCHIVIST_FAULT=point:n); the mechanism, shared with the audit log,
is rag/core/faults.py."""

from rag.core.faults import INGEST_POINTS as POINTS, reach

__all__ = ["POINTS", "reach"]
