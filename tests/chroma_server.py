"""A real Chroma server (`chroma run`, shipped in the chromadb package) on a loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.server import free_port

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
        self._proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                with _NO_PROXY.open(f"{self.url}/api/v2/heartbeat", timeout=2):
                    return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not start on port {self.port}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
            self._proc = None
