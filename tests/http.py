"""Test clients for the app, addressing it as a browser or curl on this machine would."""

from __future__ import annotations

from fastapi.testclient import TestClient

LOCAL = "http://127.0.0.1:8000"


def local_client(app, **kwargs) -> TestClient:
    """A TestClient whose requests name a loopback host (the app refuses TestClient's default
    'testserver', as it refuses any host name it does not serve)."""
    return TestClient(app, base_url=LOCAL, **kwargs)
