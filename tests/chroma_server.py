"""A real Chroma server (`chroma run`, shipped in the chromadb package) on a loopback port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.server import free_port, start_process


class ChromaServer:
    """`chroma run --path DIR` on a free port; stop() and start() keep the same port and data,
    as a restarted server would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def start(self) -> ChromaServer:
        chroma = Path(sys.executable).parent / "chroma"
        self._proc = start_process(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)], f"{self.url}/api/v2/heartbeat", "chroma run")
        return self

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
            self._proc = None
