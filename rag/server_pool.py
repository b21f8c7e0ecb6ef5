"""Several OpenAI-compatible servers standing in for each other (model servers, embedding
servers): taken in turn (round-robin), each round over all of them, rounds repeated with a
growing pause.  The callers decide what counts as a failure worth skipping to the next."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Iterator


class ServerPool:
    def __init__(self, urls: list[str], retries: int) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.retries = retries
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """All URLs, starting with the one whose turn it is."""
        with self._lock:
            start = next(self._turn) % len(self.urls)
        return self.urls[start:] + self.urls[:start]

    def rounds(self) -> Iterator[list[str]]:
        """1 + retries rounds over the servers, pausing 0.5 s, 1 s, 2 s (at most 4 s) between."""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(4.0, 0.5 * 2 ** (attempt - 1)))
            yield self.order()


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
