"""A real model server with the bundled chat model on a loopback port: `python -m
llama_cpp.server`, or llama.cpp's own `llama-server` with parallel slots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rag.models.files import resolve_llm_model
from tests.server import free_port, start_process


class ModelServer:
    """stop() and start() keep the port, as a restarted server would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_llm_model(None)),
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "4096",
                "--n_threads", "2"]

    def start(self) -> ModelServer:
        self._proc = start_process(self.command(), f"{self.url}/models", "model server",
                                   timeout_s=120)
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()  # as a crash would: no goodbye to clients mid-reply
            self._proc.wait(timeout=30)
            self._proc = None


class LlamaServer(ModelServer):
    """llama.cpp's `llama-server` binary (not shipped in the Python wheel; the Dockerfile builds
    it), with `parallel` slots of 4,096 tokens each."""

    def __init__(self, binary: Path, parallel: int = 2) -> None:
        super().__init__()
        self.binary, self.parallel = binary, parallel

    def command(self) -> list[str]:
        return [str(self.binary), "-m", str(resolve_llm_model(None)), "--host", "127.0.0.1",
                "--port", str(self.port), "-c", str(4096 * self.parallel), "--parallel",
                str(self.parallel), "-t", "2"]
