"""A real `python -m llama_cpp.server` with the bundled chat model, on a loopback port."""

from __future__ import annotations

import subprocess
import sys

from rag.models import resolve_llm_model
from tests.server import free_port, start_process


class ModelServer:
    """stop() and start() keep the port, as a restarted server would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._proc: subprocess.Popen | None = None

    def start(self) -> ModelServer:
        self._proc = start_process(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_llm_model(None)),
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "4096",
             "--n_threads", "2"], f"{self.url}/models", "llama_cpp.server", timeout_s=120)
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()  # as a crash would: no goodbye to clients mid-reply
            self._proc.wait(timeout=30)
            self._proc = None
