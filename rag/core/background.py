"""One call run on a thread of its own, its result or error collected later.

For work that releases the GIL (SQLite, ONNX Runtime, torch, Chroma) overlapped with other work:
the keyword search beside the question's embedding (rag/retrieval/retriever.py), a batch's embedding
beside the parsing of the next files (ingest/pipeline.py)."""

from __future__ import annotations

import functools
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Background(threading.Thread, Generic[T]):
    """Started on construction; result() waits for it and re-raises its error in the caller."""

    def __init__(self, fn: Callable[..., T], *args, name: str | None = None) -> None:
        super().__init__(daemon=True, name=name)
        self._call = functools.partial(fn, *args)
        self._value: T | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self) -> T:
        self.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
