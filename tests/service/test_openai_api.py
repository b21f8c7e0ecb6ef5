"""The OpenAI-compatible API, driven by the real `openai` client against a live server on the
real models and index."""

import hashlib
import httpx
import json
import openai
import pytest

from service.app import create_app
from tests.server import serve

QUESTION = "How many units of the Falcon drill are in stock?"


@pytest.fixture(scope="module")
def base_url(ingested):
    with serve(create_app(ingested.settings, ingested.library)) as url:
        yield url


@pytest.fixture
def client(base_url):
    # max_retries=0: a 429 or 5xx must surface in the test, not be retried away.
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_models_are_the_collections(client):
    assert [m.id for m in client.models.list()] == ["default"]


def test_chat_completion_answers_with_citations(client):
    completion = client.chat.completions.create(model="default", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION}])
    message = completion.choices[0].message
    assert message.role == "assistant" and message.content.strip()
    assert completion.choices[0].finish_reason == "stop" and completion.model == "default"
    extra = completion.model_extra["archivist"]
    # The 135M model sometimes declines even with the right passage; the reply is still grounded.
    assert extra["answer"] == message.content and "refused" in extra and "reason" in extra
    assert extra["citations"][0]["source"] == "inventory.csv" and extra["answer_id"]


def test_earlier_messages_are_the_conversation(client):
    completion = client.chat.completions.create(model="default", messages=[
        {"role": "user", "content": "What is the maximum load of the Orion crane?"},
        {"role": "assistant", "content": "The maximum load of the Orion crane is 18 tonnes [1]."},
        {"role": "user", "content": [{"type": "text", "text": "At what radius?"}]}])
    extra = completion.model_extra["archivist"]
    assert "Orion" in extra["query"]  # the follow-up was made stand-alone from the history
    assert extra["citations"][0]["source"] == "specs.docx"


def test_streaming_sends_openai_chunks_and_citations_last(client):
    chunks = list(client.chat.completions.create(
        model="default", stream=True, messages=[{"role": "user", "content": QUESTION}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["archivist"]["citations"][0]["source"] == "inventory.csv"
    assert all(c.id == chunks[0].id and c.object == "chat.completion.chunk" for c in chunks)


def test_the_raw_stream_ends_with_done(base_url):
    body = {"model": "default", "stream": True,
            "messages": [{"role": "user", "content": "Who won the 1998 football world cup?"}]}
    reply = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=120)
    events = [block for block in reply.text.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    final = json.loads(events[-2][len("data: "):])
    assert final["archivist"]["refused"] is True and final["archivist"]["reason"]


def test_embeddings_match_the_collections_embedder(client, ingested):
    expected = ingested.library.models.embedder.embed(["valve colour", "crane load"])
    # The client asks for base64 (packed float32) unless told otherwise; both are served.
    packed = client.embeddings.create(model="default", input=["valve colour", "crane load"])
    floats = client.embeddings.create(model="default", input="valve colour", encoding_format="float")
    assert [d.index for d in packed.data] == [0, 1] and packed.usage.prompt_tokens > 0
    for got, want in zip([d.embedding for d in packed.data] + [floats.data[0].embedding],
                         expected + expected[:1]):
        assert len(got) == len(want) == 384
        assert max(abs(a - b) for a, b in zip(got, want)) < 1e-6
    # each call is in the audit log, its texts by digest only
    events = ingested.library.audit.events(action="embed")[:2]
    digest = hashlib.sha256(json.dumps(["valve colour", "crane load"], ensure_ascii=False).encode()).hexdigest()
    details = json.loads(events[1].details)
    assert (events[1].collection, events[1].outcome, details["inputs"]) == ("default", "ok", 2)
    assert details["inputs_sha256"] == digest and details["tokens"] == packed.usage.prompt_tokens
    assert json.loads(events[0].details)["inputs"] == 1
    assert "valve" not in events[1].details


def test_unknown_model_is_a_404_in_openai_shape(client, base_url):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi?"}])
    assert missing.value.status_code == 404 and "default" in missing.value.message
    raw = httpx.post(f"{base_url}/v1/embeddings", json={"model": "nope", "input": "x"}).json()
    assert raw["error"]["code"] == "model_not_found" and raw["error"]["type"] == "invalid_request_error"
    assert raw["hint"]  # the project's own error fields are there too


def test_bad_conversations_are_rejected_with_a_hint(client):
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        client.chat.completions.create(model="default", messages=[
            {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "140."}])
    assert "user message" in bad.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="default", messages=[])


@pytest.fixture
def two_collections(tmp_path):
    from rag.core import collection_folders
    from rag.library import Library
    from rag.models.loaded import Models
    from tests.conftest import make_settings
    from tests.fakes import FakeEmbedder, FakeGenerator
    from tests.workspace import Workspace

    settings = make_settings(tmp_path, min_score=0.1)
    (settings.data_dir / "hr").mkdir(parents=True)
    (settings.data_dir / "boat.md").write_text("# Boat\n\nThe rescue launch uses VHF channel 72.\n")
    (settings.data_dir / "hr" / collection_folders.MARKER).touch()
    (settings.data_dir / "hr" / "leave.md").write_text("# Leave\n\nNew staff get 25 days of annual leave.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder(),
                                       generator=FakeGenerator("25 days [1].")))
    app = create_app(settings, library=library)
    for name in library.names():
        Workspace(library, name).indexer.ingest()  # after create_app: /metrics counts them
    with serve(app) as url:
        yield url
    library.close()


def test_every_collection_is_a_model(two_collections):
    with openai.OpenAI(base_url=f"{two_collections}/v1", api_key="unused", max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["default", "hr"]
        completion = client.chat.completions.create(model="hr", messages=[
            {"role": "user", "content": "How many days of annual leave do new staff get?"}])
        assert completion.choices[0].message.content == "25 days [1]."
        assert [c["source"] for c in completion.model_extra["archivist"]["citations"]] == ["leave.md"]
        assert len(client.embeddings.create(model="hr", input="leave").data[0].embedding) == 64
        with pytest.raises(openai.NotFoundError):  # not even a valid collection name: still a 404
            client.embeddings.create(model="gpt-3.5-turbo", input="leave")
    metrics = httpx.get(f"{two_collections}/metrics").text
    assert 'archivist_ingest_files_total{collection="hr",outcome="added"} 1.0' in metrics
    assert 'archivist_ingest_files_total{collection="default",outcome="added"} 1.0' in metrics
    assert 'archivist_index_chunks{collection="hr"}' in metrics
