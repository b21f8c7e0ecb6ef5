"""What the audit log keeps of a question, through the assistant: a generated answer is recorded
before its first token and once verified, a client that goes away leaves what it was sent, a
question refused with an error is recorded as failed, and the passages are named by hash."""

from __future__ import annotations

import json

import pytest

from rag.audit.events import Actor
from rag.core.errors import BadRequestError
from rag.core.shapes import sha256_text
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace

QUESTION = "When does the harbour open?"
DANA = Actor("0d0d0d0d", "reader", "req-7")


@pytest.fixture
def ws(tmp_path):
    generator = FakeGenerator("The harbour opens at dawn [1] and closes at dusk.", record=False)
    ws = Workspace.make(tmp_path, FakeEmbedder(), generator, min_score=0.1, min_evidence=0.0,
                        answer_mode="generative")
    ws.settings.data_dir.mkdir(parents=True)
    (ws.settings.data_dir / "harbour.md").write_text("# Harbour\n\nThe harbour opens at dawn.\n")
    ws.indexer.ingest()
    yield ws
    ws.library.close()


def asked(ws, action="ask"):
    return list(reversed(ws.collection.audit.events(action=action)))


def test_a_generated_answer_is_recorded_before_its_first_token_and_once_verified(ws):
    stream = ws.assistant.start(QUESTION, actor=DANA)
    kind, citations = next(stream)
    assert kind == "citations"
    started = asked(ws)
    assert [e.outcome for e in started] == ["started"]  # already, before any token went out
    assert (started[0].actor, started[0].role, started[0].request_id) == ("0d0d0d0d", "reader", "req-7")
    done = stream.result()["done"]
    events = asked(ws)
    assert [e.outcome for e in events] == ["started", "answered"]
    details = json.loads(events[1].details)
    assert details["answer_id"] == done.answer_id and details["llm_model"] == "fake.gguf"
    assert details["passages"] == [{"chunk_id": c.chunk_id, "content_hash": sha256_text(c.text),
                                    "source": c.source, "page": c.page} for c in done.citations]
    secret = ws.collection.audit.open_secret(events[1])
    assert secret["question"] == QUESTION and secret["answer"] == done.answer


def test_a_client_that_goes_away_leaves_what_it_was_sent(ws):
    stream = ws.assistant.start(QUESTION, actor=DANA)
    next(stream)  # citations
    kind, token = next(stream)
    assert kind == "token"
    stream.close()
    events = asked(ws)
    assert [e.outcome for e in events] == ["started", "stopped"]
    assert ws.collection.audit.open_secret(events[1])["answer"] == token


def test_a_client_that_leaves_before_any_step_or_after_the_passages_is_recorded_too(ws):
    waiting = ws.assistant.start(QUESTION, actor=DANA)  # admitted, its turn not yet taken
    waiting.close()
    events = asked(ws)
    assert [e.outcome for e in events] == ["abandoned"]
    assert json.loads(events[0].details)["llm_model"] == "fake.gguf"
    assert ws.collection.audit.open_secret(events[0])["question"] == QUESTION
    assert ws.library.models.gate.running == 0  # and the model is free

    sent_passages = ws.assistant.start(QUESTION, actor=DANA)
    assert next(sent_passages)[0] == "citations"
    sent_passages.close()
    assert [e.outcome for e in asked(ws)] == ["abandoned", "started", "stopped"]
    assert ws.library.models.gate.running == 0


def test_a_question_refused_with_an_error_is_recorded_as_failed(ws):
    with pytest.raises(BadRequestError):
        ws.assistant.ask("x" * 5000, actor=DANA)
    with pytest.raises(BadRequestError):
        ws.assistant.search(QUESTION, top_k=999, actor=DANA)
    failed = [(e.action, e.outcome, json.loads(e.details)["kind"])
              for e in reversed(ws.collection.audit.events(outcome="failed"))]
    assert failed == [("ask", "failed", "BadRequestError"), ("search", "failed", "BadRequestError")]
