"""Server-Sent Events on /v1/ask and /v1/chat, and generation stopping when the client leaves."""

import json
import threading
import time

import httpx
import pytest
from tests.http import local_client

from service.app import create_app
from tests.workspace import Workspace
from tests.server import serve


def parse_events(text):
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_ask_streams_citations_then_tokens_then_the_verified_answer(ingested):
    with local_client(create_app(ingested.settings, ingested.library)) as client:
        reply = client.post("/v1/ask", json={"question": "What colour is the emergency valve?",
                                             "stream": True, "top_k": 2})
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        events = parse_events(reply.text)
    kinds = [k for k, _ in events]
    assert kinds[0] == "citations" and kinds[-1] == "done" and set(kinds[1:-1]) == {"token"}
    assert events[0][1][0]["source"] == "reports/turbine.pdf"
    done = events[-1][1]
    assert done["answer_id"] and "sentences" in done
    assert [c["chunk_id"] for c in done["citations"]] == [c["chunk_id"] for c in events[0][1]]
    assert "".join(d["text"] for k, d in events if k == "token").strip()


def test_chat_streams_with_its_conversation_first_and_rejects_bad_input_before_streaming(ingested):
    with local_client(create_app(ingested.settings, ingested.library)) as client:
        events = parse_events(client.post("/v1/chat", json={
            "question": "How many units of the Falcon drill are in stock?", "stream": True}).text)
        assert events[0][0] == "conversation" and events[-1][0] == "done"
        assert client.post("/v1/ask", json={"question": " ", "stream": True}).status_code == 422
        assert client.post("/v1/chat", json={"question": "hi?", "stream": True,
                                             "conversation_id": "nope"}).status_code == 404


class SlowGenerator:
    """Writes a long reply slowly, counting tokens; one generation at a time, like llama.cpp."""

    name = "slow.gguf"
    context_window = 4096

    def __init__(self):
        self.produced = 0
        self.lock = threading.Lock()

    def generate(self, messages, params, stop=None):
        with self.lock:
            for _ in range(400):
                time.sleep(0.01)
                self.produced += 1
                yield " word"

    def count_tokens(self, text):
        return len(text.split())


@pytest.fixture
def slow_server(tmp_path, data_dir, real_embedder):
    generator = SlowGenerator()
    ws = Workspace.make(tmp_path, embedder=real_embedder, generator=generator)
    ws.indexer.ingest()
    with serve(create_app(ws.settings, ws.library)) as url:
        yield url, generator, ws


def test_a_client_that_disconnects_stops_the_generation(slow_server):
    base, generator, _ = slow_server
    body = {"question": "What is the maximum load of the Orion crane?", "stream": True}
    with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=30) as reply:
        tokens = 0
        for line in reply.iter_lines():
            tokens += line == "event: token"
            if tokens == 5:
                break
    time.sleep(1.0)
    stopped_at = generator.produced
    time.sleep(0.5)
    assert generator.produced == stopped_at < 200  # not still writing the 400-token reply
    assert generator.lock.acquire(timeout=5)  # and the model is free for the next request
    generator.lock.release()


def test_a_client_that_leaves_the_queue_frees_its_place_at_once_and_is_recorded(slow_server):
    base, generator, ws = slow_server
    gate = ws.library.models.gate
    body = {"question": "What is the maximum load of the Orion crane?", "stream": True}
    with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=30) as first:
        lines = first.iter_lines()
        while next(lines) != "event: token":  # the first answer holds the model
            pass
        with httpx.stream("POST", f"{base}/v1/ask", json=body, timeout=30) as second:
            assert second.status_code == 200
            deadline = time.monotonic() + 10
            while gate.waiting != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gate.waiting == 1  # the second waits for its turn
        left = time.monotonic()
        while gate.waiting and time.monotonic() - left < 5:
            time.sleep(0.05)
        assert gate.waiting == 0 and time.monotonic() - left < 2  # not when its turn came
        assert gate.running == 1  # the first is still answering
        outcomes = [e.outcome for e in ws.collection.audit.events(action="ask")]
        assert outcomes.count("abandoned") == 1 and outcomes.count("started") == 1
    # The first request ends on the server after its client left: let it finish (and write its
    # access-log line) inside this test, not after the test's log capture is gone.
    ended = time.monotonic()
    while gate.running and time.monotonic() - ended < 10:
        time.sleep(0.05)
    assert gate.running == 0
