"""The bounded generation queue: unit rules, then a full queue over a real socket answering 429."""

import threading
import time

import httpx
import pytest

from rag.models.generation_gate import AnswerStream, GenerationGate, QueueFullError
from service.app import create_app
from tests.server import serve
from tests.workspace import Workspace

QUESTION = "What is the maximum load of the Orion crane?"


def test_the_gate_runs_one_queues_max_queue_and_refuses_the_rest():
    gate = GenerationGate(max_queue=1, typical_s=3.0)
    first = gate.admit()
    second = gate.admit()
    assert (gate.running, gate.waiting) == (1, 1)
    with pytest.raises(QueueFullError) as refused:
        gate.admit()
    assert refused.value.retry_after == 6  # 3 s each for the waiter and the refused one
    assert "ARCHIVIST_MAX_QUEUE" in refused.value.hint

    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (second.wait(), entered.set()))
    waiter.start()
    assert not entered.wait(0.2)  # the slot is still held
    first.release()
    first.release()  # idempotent: must not free a second slot
    assert entered.wait(5)
    waiter.join()
    assert (gate.running, gate.waiting) == (1, 0)
    second.release()
    assert (gate.running, gate.waiting) == (0, 0)


def test_a_queued_request_that_leaves_before_running_gives_its_place_back():
    gate = GenerationGate(max_queue=1)
    running = gate.admit()
    events = AnswerStream(iter([("token", "x")]), gate.admit())  # admitted, never stepped
    assert gate.waiting == 1
    events.close()
    assert (gate.running, gate.waiting) == (1, 0)
    running.release()
    assert gate.admit() is not None  # the slot is free again


def test_exhausting_the_events_frees_the_model():
    gate = GenerationGate(max_queue=0)
    events = AnswerStream(iter([("token", "a"), ("done", "b")]), gate.admit())
    assert list(events) == [("token", "a"), ("done", "b")]
    assert gate.running == 0
    gate.admit()  # would raise QueueFullError with max_queue=0 if the slot were still held


class BlockingGenerator:
    """Writes one word once `go` is set, so a test decides when the model is busy."""

    name = "blocking.gguf"
    context_window = 4096

    def __init__(self):
        self.go = threading.Event()
        self.started = 0

    def generate(self, messages, params, stop=None):
        self.started += 1
        assert self.go.wait(30), "test never released the generator"
        yield "Eighteen tonnes [1]."

    def count_tokens(self, text):
        return len(text.split())


@pytest.fixture
def busy_server(tmp_path, data_dir, real_embedder):
    generator = BlockingGenerator()
    ws = Workspace.make(tmp_path, max_queue=1, embedder=real_embedder, generator=generator)
    ws.indexer.ingest()
    app = create_app(ws.settings, ws.library)
    with serve(app) as url:
        yield url, app.state.library.models.gate, generator
    generator.go.set()


def wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_full_queue_answers_429_with_retry_after_then_recovers(busy_server):
    base, gate, generator = busy_server
    replies = {}

    def ask(name, **extra):
        replies[name] = httpx.post(f"{base}/v1/ask", json={"question": QUESTION, **extra}, timeout=60)

    running = threading.Thread(target=ask, args=("running",))
    running.start()
    wait_for(lambda: generator.started == 1)  # holds the model
    queued = threading.Thread(target=ask, args=("queued",), kwargs={"stream": True})
    queued.start()
    wait_for(lambda: gate.waiting == 1)

    full = httpx.post(f"{base}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=10)
    assert full.status_code == 429
    assert int(full.headers["Retry-After"]) >= 1
    body = full.json()
    assert "busy" in body["detail"] and "Retry" in body["hint"]
    openai_full = httpx.post(f"{base}/v1/chat/completions", timeout=10, json={
        "model": "default", "messages": [{"role": "user", "content": QUESTION}]})
    assert openai_full.status_code == 429
    assert openai_full.json()["error"]["type"] == "rate_limit_error"
    assert httpx.post(f"{base}/v1/search", json={"question": QUESTION}).status_code == 200  # no model

    generator.go.set()
    running.join(30)
    queued.join(30)
    running_body = replies["running"].json()  # the model's reply, or kept as the draft of a quote
    assert replies["running"].status_code == 200
    assert "Eighteen" in (running_body["draft"] or running_body["answer"])
    assert replies["queued"].status_code == 200 and "event: done" in replies["queued"].text
    assert (gate.running, gate.waiting) == (0, 0)


def test_cached_answers_and_refusals_skip_a_full_queue(busy_server):
    """Decided before the model is needed: a repeated question and an unanswerable one get their
    200 at once while a generation runs and the queue is full."""
    base, gate, generator = busy_server
    generator.go.set()
    first = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=60).json()
    generator.go.clear()
    threads = [threading.Thread(target=httpx.post, args=(f"{base}/v1/ask",), kwargs={
        "json": {"question": q}, "timeout": 60}) for q in (
        "How many days of paid leave do employees get?", "Which port does the metrics exporter listen on?")]
    threads[0].start()
    wait_for(lambda: generator.started == 2)  # the model is busy
    threads[1].start()
    wait_for(lambda: gate.waiting == 1)  # and the queue (max_queue 1) is full

    cached = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=10)
    assert cached.status_code == 200 and cached.json()["cached"] is True
    assert cached.json()["answer_id"] == first["answer_id"]
    openai_cached = httpx.post(f"{base}/v1/chat/completions", timeout=10, json={
        "model": "default", "messages": [{"role": "user", "content": QUESTION}]})
    assert openai_cached.status_code == 200 and openai_cached.json()["archivist"]["cached"] is True
    refused = httpx.post(f"{base}/v1/ask", json={"question": "How do I configure Patroni failover?"},
                         timeout=10)
    assert refused.status_code == 200 and refused.json()["refused"] is True
    assert threads[0].is_alive() and (gate.running, gate.waiting) == (1, 1)  # still generating

    generator.go.set()
    for thread in threads:
        thread.join(30)
    assert (gate.running, gate.waiting) == (0, 0)
