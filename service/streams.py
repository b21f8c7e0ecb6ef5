"""Answers as they are made: through the metrics, and out as Server-Sent Events."""

from __future__ import annotations

import json
import threading
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse

from rag.core.errors import ArchivistError
from rag.models.generation_gate import AnswerStream, WaitCancelled


def metered(request: Request, stream: AnswerStream) -> AnswerStream:
    """The answer's events, counted by the app's metrics.  A stream that needs the model waits
    for it at its first step: step it in a worker thread, never on the event loop."""
    return stream.wrapped(request.app.state.metrics.meter)


def sse(kind: str, data: Any) -> str:
    payload = jsonable_encoder(data)
    if kind == "token":
        payload = {"text": data}
    return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def event_stream(request: Request, events: Iterator[tuple[str, Any]],
                 encode: Callable[[str, Any], str] = sse) -> StreamingResponse:
    """Server-Sent Events from an answer's events, stepped in a worker thread.
    When the client goes away the iterator is closed, which stops the model and frees it.
    `encode(kind, data)` writes one event; errors come as ("error", {"detail", "hint"})."""
    step_lock = threading.Lock()  # close() must wait for a step that is still running
    done = object()

    def step() -> Any:
        with step_lock:
            try:
                return next(events, done)
            except WaitCancelled:  # the client left while the answer waited for the model
                return done

    def close() -> None:
        cancel = getattr(events, "cancel", None)
        if cancel is not None:
            cancel()  # a step still waiting for the model's turn stops waiting
        with step_lock:
            events.close()

    async def body() -> AsyncIterator[str]:
        try:
            while not await request.is_disconnected():
                try:
                    # abandon_on_cancel: a client that leaves while a step waits for the model's
                    # turn reaches the finally below at once, whose close() ends that wait.
                    item = await anyio.to_thread.run_sync(step, abandon_on_cancel=True)
                except ArchivistError as exc:
                    yield encode("error", {"detail": exc.message, "hint": exc.hint})
                    return
                if item is done:
                    return
                text = encode(*item)
                if text:
                    yield text
        finally:
            with anyio.CancelScope(shield=True):  # runs even when the response was cancelled
                await anyio.to_thread.run_sync(close)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
