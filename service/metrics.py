"""Prometheus metrics for one app: its own registry, so two apps (tests, or a future multi-app
process) never share or double-register series."""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rag.core.errors import ArchivistError
from rag.library import Library
from rag.models.generation_gate import close_events

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RATE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
INGEST_OUTCOMES = ("added", "updated", "unchanged", "removed", "failed")


class _IndexSize:
    """Chunks per collection, read from the index at scrape time rather than kept in step."""

    def __init__(self, library: Library) -> None:
        self._library = library

    def describe(self) -> list:
        return []  # no collect() at registration: that would open the index

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("archivist_index_chunks", "Chunks in the index.",
                                   labels=["collection"])
        for name in self._library.names():
            try:
                with self._library.collection(name).views.reading(check=False) as view:
                    family.add_metric([name], view.store.count())
            except ArchivistError as exc:  # an unusable index has no size; /v1/health says why
                log.debug("index size of %s: %s", name, exc)
        yield family


class Metrics:
    """The app's metrics; it counts the library's ingests from construction on."""

    def __init__(self, library: Library) -> None:
        gate = library.models.gate
        self.registry = r = CollectorRegistry()
        labels = ["method", "route", "status"]
        self.requests = Counter("archivist_http_requests", "HTTP requests answered.", labels,
                                registry=r)
        self.latency = Histogram("archivist_http_request_duration_seconds",
                                 "Time to answer an HTTP request (streams: until the last byte).",
                                 labels, buckets=LATENCY_BUCKETS, registry=r)
        Gauge("archivist_queue_waiting", "Requests waiting for the chat model.",
              registry=r).set_function(lambda: gate.waiting)
        Gauge("archivist_queue_running", "Requests holding the chat model (0 or 1).",
              registry=r).set_function(lambda: gate.running)
        Gauge("archivist_queue_limit", "Most requests allowed to wait (ARCHIVIST_MAX_QUEUE).",
              registry=r).set(gate.max_queue)
        self.tokens = Counter("archivist_generated_tokens",
                              "Tokens written by the chat model (streamed pieces).", registry=r)
        self.rate = Histogram("archivist_generation_tokens_per_second",
                              "Generation speed per answer, prompt processing included.",
                              buckets=RATE_BUCKETS, registry=r)
        self.ingest_files = Counter("archivist_ingest_files", "Files seen by ingests in this process.",
                                    ["collection", "outcome"], registry=r)
        self.ingest_chunks = Counter("archivist_ingest_chunks_embedded",
                                     "Chunks embedded by ingests in this process.", ["collection"],
                                     registry=r)
        r.register(_IndexSize(library))
        library.listeners.append(self.record_ingest)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def record_ingest(self, collection: str, report: Any) -> None:
        for outcome in INGEST_OUTCOMES:
            self.ingest_files.labels(collection, outcome).inc(getattr(report, outcome))
        self.ingest_chunks.labels(collection).inc(report.chunks_embedded)

    def meter(self, events: Iterator[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
        """Pass an answer's events through, counting the model's pieces."""
        started = last = time.perf_counter()
        pieces = 0
        try:
            for kind, data in events:
                if kind == "citations":  # retrieval done: the model starts now
                    started = time.perf_counter()
                elif kind == "token":
                    pieces += 1
                    last = time.perf_counter()
                elif kind == "done":
                    # Cached answers and retrieval refusals arrive as one piece, without the model.
                    if not data.cached and not (data.refused and pieces <= 1) and pieces:
                        self.tokens.inc(pieces)
                        self.rate.observe(pieces / max(last - started, 1e-6))
                yield kind, data
        finally:
            close_events(events)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
