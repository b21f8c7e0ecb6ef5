"""A bounded queue in front of the chat model, and the stream of events that holds a place in it.

llama.cpp serves one generation at a time; without a bound, every extra request would hold a
worker thread and wait minutes.  Only requests that need the model are admitted (cached answers
and refusals are decided before, without it), and they are admitted or refused (QueueFullError,
HTTP 429) before anything is sent, so a client learns at once; admitted ones wait for the single
running slot in their own thread, never on the server's event loop.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Iterator

from rag.core.errors import ArchivistError


class QueueFullError(ArchivistError):
    """Too many requests are already waiting for the model (HTTP 429)."""

    def __init__(self, message: str, hint: str, retry_after: int) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class WaitCancelled(Exception):
    """The request gave up its place in the queue before its turn came (Ticket.cancel)."""


class Ticket:
    """One admitted request: waiting until `wait()` returns, running until `release()`."""

    def __init__(self, gate: GenerationGate, running: bool) -> None:
        self._gate = gate
        self._running = running
        self._done = False
        self._cancelled = threading.Event()
        self._since = time.monotonic()

    @property
    def released(self) -> bool:
        return self._done

    def cancel(self) -> None:
        """Stop waiting (from another thread): a `wait()` in progress raises WaitCancelled
        within a quarter of a second, so a client that left frees its place at once rather than
        when its turn comes.  No effect once the ticket runs."""
        self._cancelled.set()

    def wait(self) -> None:
        if self._running or self._done:
            return
        while not self._gate._slot.acquire(timeout=0.25):
            if self._cancelled.is_set():
                raise WaitCancelled("the request left the queue before its turn")
        if self._cancelled.is_set():  # its turn came as it left: give it to the next one
            self._gate._slot.release()
            raise WaitCancelled("the request left the queue before its turn")
        with self._gate._lock:
            self._gate._waiting -= 1
            self._gate._running += 1
            self._running = True
            self._since = time.monotonic()

    def release(self) -> None:
        """Idempotent: give back the slot, or the place in the queue if it never ran."""
        with self._gate._lock:
            if self._done:
                return
            self._done = True
            self._gate._live.discard(self)
            if not self._running:
                self._gate._waiting -= 1
                return
            self._gate._running -= 1
            held = time.monotonic() - self._since
            self._gate._mean_s += 0.2 * (held - self._gate._mean_s)  # moving average for Retry-After
        self._gate._slot.release()


class GenerationGate:
    def __init__(self, max_queue: int, typical_s: float = 10.0, slots: int = 1) -> None:
        """`slots`: generations at once (1 in-process; a model server's parallel slots)."""
        self.max_queue = max_queue
        self._slot = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0
        self._mean_s = typical_s  # until measured: the README's median answer time on 2 cores
        self._live: set[Ticket] = set()  # admitted and not yet released

    def live(self) -> frozenset[Ticket]:
        """The tickets admitted and not yet released (a model switch waits for these to end
        before freeing the old model: every answer that may be using it holds one)."""
        with self._lock:
            return frozenset(self._live)

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    def admit(self) -> Ticket:
        """A ticket, running at once if the model is free; QueueFullError if the queue is full."""
        with self._lock:
            if self._waiting == 0 and self._slot.acquire(blocking=False):  # no barging past waiters
                self._running += 1
                ticket = Ticket(self, running=True)
                self._live.add(ticket)
                return ticket
            if self._waiting >= self.max_queue:
                retry = max(1, min(600, math.ceil(self._mean_s * (self._waiting + 1))))
                raise QueueFullError(
                    f"The server is busy: {self._waiting} requests are already waiting for the model.",
                    hint=f"Retry in about {retry} s (Retry-After), or raise ARCHIVIST_MAX_QUEUE.",
                    retry_after=retry)
            self._waiting += 1
            ticket = Ticket(self, running=False)
            self._live.add(ticket)
        return ticket



def close_events(events: Iterator[Any]) -> None:
    """Close an event iterator if it can be closed (a generator; a ready answer's list cannot)."""
    close = getattr(events, "close", None)
    if close:
        close()


class AnswerStream:
    """One answer's events: ("citations", [Citation]), ("token", str) pieces, ("done", Answer),
    preceded by ("conversation", id) in a chat.  Iterate it, or call result().

    When the answer needs the model, the stream holds a Ticket: stepping it waits for the model's
    turn; exhausting or closing it gives the turn back, and closing it early stops generation (the
    answer is not recorded; the audit log says what was sent).  cancel(), from another thread,
    ends a wait for the turn.  A class, not a generator: a generator closed before its first
    step runs no `finally`, and the queue place of a client that left while waiting would leak."""

    def __init__(self, events: Iterator[tuple[str, Any]], ticket: Ticket | None = None,
                 unstarted: Callable[[], None] | None = None) -> None:
        """`unstarted`: called if the stream is closed before its first step (the events never
        ran, so nothing of theirs can say so: the audit log's "abandoned")."""
        self._events = events
        self.ticket = ticket
        self._unstarted = unstarted

    @classmethod
    def ready(cls, answer: Any) -> AnswerStream:
        """An answer made without the model (cached, or refused): no ticket, nothing to wait for."""
        return cls(iter([("citations", answer.citations), ("token", answer.answer), ("done", answer)]))

    def __iter__(self) -> AnswerStream:
        return self

    def __next__(self) -> tuple[str, Any]:
        if self.ticket is not None:
            self.ticket.wait()  # WaitCancelled after cancel(): the events never started
        self._unstarted = None
        try:
            return next(self._events)
        except BaseException:  # StopIteration included: the model is free again
            self.close()
            raise

    def cancel(self) -> None:
        """Called from another thread when the client has gone: a step waiting for the model's
        turn gives up (WaitCancelled); close() must still follow."""
        if self.ticket is not None:
            self.ticket.cancel()

    def close(self) -> None:
        unstarted, self._unstarted = self._unstarted, None
        try:
            close_events(self._events)
        finally:
            if self.ticket is not None:
                self.ticket.release()
            if unstarted is not None:
                unstarted()

    def wrapped(self, wrap: Callable[[Iterator[tuple[str, Any]]], Iterator[tuple[str, Any]]]
                ) -> AnswerStream:
        """This stream's events passed through `wrap` (e.g. a chat adding its conversation
        event), holding the same ticket; closing it closes these events too."""
        inner = self._events

        def events() -> Iterator[tuple[str, Any]]:
            try:
                yield from wrap(inner)
            finally:
                close_events(inner)

        wrapped, self._unstarted = AnswerStream(events(), self.ticket, self._unstarted), None
        return wrapped

    def result(self) -> dict[str, Any]:
        """Run to the end; the last event of each kind ("conversation", "done", ...)."""
        seen: dict[str, Any] = {}
        try:
            for kind, data in self:
                seen[kind] = data
        finally:
            self.close()
        return seen
