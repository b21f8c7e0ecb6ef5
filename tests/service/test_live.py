"""One real uvicorn server on loopback, asked over HTTP the way `curl` would."""

import httpx
import pytest

from service.app import create_app
from tests.server import serve


@pytest.fixture(scope="module")
def base_url(ingested):
    with serve(create_app(ingested.settings, ingested.library)) as url:
        yield url


def test_ask_over_a_real_socket(base_url):
    # Exactly what `curl -s localhost:8000/v1/ask -d '{"question": "..."}'` sends.
    reply = httpx.post(f"{base_url}/v1/ask", content=b'{"question": "How many units of the Falcon drill are in stock?"}',
                       headers={"content-type": "application/x-www-form-urlencoded"}, timeout=120)
    assert reply.status_code == 200
    body = reply.json()
    assert body["citations"][0]["source"] == "inventory.csv" and body["answer"]
    assert httpx.get(f"{base_url}/v1/health").json()["status"] == "ok"
