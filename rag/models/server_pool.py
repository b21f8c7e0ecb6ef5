"""Several OpenAI-compatible servers standing in for each other (model servers, embedding
servers): taken in turn (round-robin), each round over all of them, rounds repeated with a
growing pause.  The callers decide what counts as a failure worth skipping to the next: they
raise Skip for it, and first_answer() moves on."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from rag.core.sections import RemoteServers

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")


class Skip(Exception):
    """This server failed in a way another may not (down, 5xx, 429, an unreadable reply)."""


class NoServerAnswered(Exception):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{url} ({why})" for url, why in problems.items()))
        self.problems = problems


class ServerPool:
    def __init__(self, cfg: RemoteServers) -> None:
        self.urls = [url.rstrip("/") for url in cfg.url]
        self.retries = cfg.retries
        self.kind = cfg.KIND
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

    def first_answer(self, ask: Callable[[str], T]) -> T:
        """ask(url) on each server in turn until one answers; a connection failure or Skip moves
        to the next.  NoServerAnswered, naming each server's last problem, after every round."""
        import httpx  # the client of chromadb and the OpenAI SDK; imported when first used

        problems: dict[str, str] = {}
        for attempt, urls in enumerate(self.rounds()):
            for url in urls:
                try:
                    return ask(url)
                except httpx.TransportError as exc:
                    problems[url] = describe(exc)
                except Skip as exc:
                    problems[url] = str(exc)
            log.warning("no %s answered (attempt %d of %d): %s", self.kind, attempt + 1,
                        self.retries + 1, problems)
        raise NoServerAnswered(problems)


def http_client(cfg: RemoteServers) -> httpx.Client:
    """The client for `cfg`'s servers: its timeout (connecting: at most 5 s) and key."""
    import httpx

    key = cfg.api_key.get_secret_value() if cfg.api_key else None
    # trust_env=False: proxy variables must not send a loopback server's traffic away
    return httpx.Client(timeout=httpx.Timeout(cfg.timeout_s, connect=min(5.0, cfg.timeout_s)),
                        headers={"Authorization": f"Bearer {key}"} if key else None,
                        trust_env=False)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
