"""Staying offline: the switches that keep libraries from phoning home, and a guard that proves it."""

from __future__ import annotations

import ipaddress
import os
import socket
import traceback

# Switches that stop Hugging Face libraries, unstructured and Chroma from reaching the network.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    "ANONYMIZED_TELEMETRY": "False",  # chromadb's posthog telemetry
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def enforce_offline() -> None:
    """Set the offline switches for this process (called by entry points, never at import)."""
    os.environ.update(OFFLINE_ENV)


class NetworkBlockedError(OSError):
    pass


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else ""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _culprit() -> str:
    """The outermost non-stdlib module on the stack: the one that tried to connect."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        name = frame.filename
        if "site-packages" in name or "/service/" in name or "/rag/" in name or "/ingest/" in name:
            return f"{name}:{frame.lineno}"
    return "unknown"


class NetworkGuard:
    """Within the block, any connection to a non-loopback address raises NetworkBlockedError
    naming the code that tried, and is recorded in `attempts`."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: tuple | None = None

    def __enter__(self) -> NetworkGuard:
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        guard = self

        def check(sock: socket.socket, address: object) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
                message = f"blocked connection to {address!r} from {_culprit()}"
                guard.attempts.append(message)
                raise NetworkBlockedError(message)

        def connect(sock, address):
            check(sock, address)
            return real_connect(sock, address)

        def connect_ex(sock, address):
            check(sock, address)
            return real_connect_ex(sock, address)

        self._saved = (real_connect, real_connect_ex)
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        socket.socket.connect, socket.socket.connect_ex = self._saved
