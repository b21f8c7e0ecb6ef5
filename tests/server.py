"""A real uvicorn server on a free loopback port, for tests that need real sockets."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uvicorn


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app) -> Iterator[str]:
    """Run `app` in a thread; yields its base URL; stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_process(command: list[str], ready_url: str, what: str, timeout_s: float = 60,
                  env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start a server process and return once `ready_url` answers (RuntimeError if it exits or
    takes longer than `timeout_s`)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=cwd)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with _NO_PROXY.open(ready_url, timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=30)
                raise RuntimeError(f"{what} did not start ({ready_url} never answered)")
            time.sleep(0.1)
