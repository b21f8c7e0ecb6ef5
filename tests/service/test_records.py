"""Audit records, the response cache, conversations and replay, on the real models."""

import time

import pytest
from tests.http import local_client

from service.app import create_app
from tests.workspace import Workspace

QUESTION = "What is the maximum load of the Orion crane?"


@pytest.fixture
def ws(tmp_path, data_dir, real_embedder, real_generator, db_url):
    """On both backends: SQLite files, and PostgreSQL (ARCHIVIST_DB_URL)."""
    ws = Workspace.make(tmp_path, embedder=real_embedder, generator=real_generator, db_url=db_url)
    ws.indexer.ingest()
    yield ws
    ws.library.close()


def test_a_repeated_question_is_answered_from_its_record(ws):
    started = time.perf_counter()
    first = ws.assistant.ask(QUESTION)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ws.assistant.ask("  what is the maximum LOAD of the Orion crane?")
    again_s = time.perf_counter() - started
    assert not first.cached and again.cached and again.answer_id == first.answer_id
    assert again.answer == first.answer and again.citations == first.citations
    print(f"first ask {first_s * 1000:.0f} ms, cached repeat {again_s * 1000:.1f} ms")


def test_an_ingest_that_changes_the_index_invalidates_the_cache(ws, data_dir):
    first = ws.assistant.ask(QUESTION)
    ws.indexer.ingest()  # nothing changed: the cache stays valid
    assert ws.assistant.ask(QUESTION).cached
    (data_dir / "notes.txt").write_text("The Orion crane was repainted in May.", encoding="utf-8")
    ws.indexer.ingest()
    fresh = ws.assistant.ask(QUESTION)
    assert not fresh.cached and fresh.answer_id != first.answer_id


def test_the_audit_record_says_what_produced_the_answer(ws):
    answer = ws.assistant.ask(QUESTION)
    record = ws.assistant.answer_record(answer.answer_id)
    prov = record["provenance"]
    assert record["question"] == QUESTION and record["answer"]["answer"] == answer.answer
    assert len(prov["llm_sha256"]) == 64 and prov["llm_model"].endswith(".gguf")
    assert prov["embed_model"].startswith("all-MiniLM-L6-v2:384:")
    assert prov["index_version"] and prov["params"]["temperature"] == ws.settings.sampling.temperature
    assert prov["passages"][0]["source"] == "specs.docx" and len(prov["passages"][0]["content_hash"]) == 64
    assert prov["timings_ms"]["total"] > 0


def test_replay_reports_whether_the_passages_changed(ws, data_dir):
    answer = ws.assistant.ask(QUESTION)
    same = ws.assistant.replay(answer.answer_id)
    assert same["passages_changed"] is False
    specs = data_dir / "specs.docx"
    import docx

    document = docx.Document(str(specs))
    document.paragraphs[-1].text = "The maximum load of the Orion crane is 21 tonnes at 15 metres."
    document.save(str(specs))
    ws.indexer.ingest()
    changed = ws.assistant.replay(answer.answer_id)
    assert changed["passages_changed"] is True and changed["passages_added"]
    assert changed["index_version"]["then"] != changed["index_version"]["now"]


def test_chat_over_http_keeps_the_conversation(ws):
    with local_client(create_app(ws.settings, ws.library)) as client:
        first = client.post("/v1/chat", json={"question": QUESTION}).json()
        conversation_id = first["conversation_id"]
        follow = client.post("/v1/chat", json={"question": "At what radius?",
                                               "conversation_id": conversation_id}).json()
        assert follow["query"] == f"{QUESTION} At what radius?"
        assert follow["citations"][0]["source"] == "specs.docx"
        turns = client.get(f"/v1/conversations/{conversation_id}").json()["turns"]
        assert [t["question"] for t in turns] == [QUESTION, "At what radius?"]
        assert client.get(f"/v1/answers/{follow['answer_id']}").json()["query"] == follow["query"]
        assert client.get("/v1/conversations/nope").status_code == 404
        assert client.get("/v1/answers/nope").status_code == 404
        missing = client.post("/v1/chat", json={"question": "Hi?", "conversation_id": "nope"})
        assert missing.status_code == 404 and "new conversation" in missing.json()["hint"]
