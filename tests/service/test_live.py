"""One real uvicorn server on loopback, asked over HTTP the way `curl` would."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from service.app import create_app


@pytest.fixture(scope="module")
def base_url(ingested):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ingested.settings, ingested), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_ask_over_a_real_socket(base_url):
    # Exactly what `curl -s localhost:8000/v1/ask -d '{"question": "..."}'` sends.
    reply = httpx.post(f"{base_url}/v1/ask", content=b'{"question": "How many units of the Falcon drill are in stock?"}',
                       headers={"content-type": "application/x-www-form-urlencoded"}, timeout=120)
    assert reply.status_code == 200
    body = reply.json()
    assert body["citations"][0]["source"] == "inventory.csv" and body["answer"]
    assert httpx.get(f"{base_url}/v1/health").json()["status"] == "ok"
