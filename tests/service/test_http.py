"""The HTTP API through FastAPI's TestClient, on the real models and a real index."""

import pytest
from tests.http import local_client

from service.app import create_app
from tests.corpus import FACTS


@pytest.fixture(scope="module")
def client(ingested):
    with local_client(create_app(ingested.settings, ingested.library)) as c:
        yield c


@pytest.mark.parametrize("question, source, page", [(q, *where) for q, where in FACTS.items()])
def test_search_puts_the_right_file_and_page_first(client, question, source, page):
    reply = client.post("/v1/search", json={"question": question, "top_k": 3})
    assert reply.status_code == 200, reply.text
    best = reply.json()["results"][0]
    assert (best["source"], best["page"]) == (source, page)
    assert set(best) >= {"id", "source", "page", "heading", "score", "text", "chunk_id"}


def test_ask_answers_with_citations(client):
    reply = client.post("/v1/ask", json={"question": "How much power does the Zephyr turbine produce?"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) >= {"answer", "citations", "refused"}
    assert body["answer"].strip()
    first = body["citations"][0]
    assert (first["id"], first["source"], first["page"]) == (1, "reports/turbine.pdf", 2)


def test_off_topic_question_is_refused(client):
    body = client.post("/v1/ask", json={"question": "Who won the 1998 football world cup?"}).json()
    assert body["refused"] is True and body["reason"]


def test_curl_style_form_content_type_is_read_as_json(client):
    reply = client.post("/v1/search", content=b'{"question": "Falcon drill stock"}',
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200
    assert reply.json()["results"][0]["source"] == "inventory.csv"


@pytest.mark.parametrize("body, fragment", [
    ({"question": "   "}, "empty"),
    ({"question": "x" * 5000}, "limit"),
    ({"question": "valve", "top_k": 0}, "top_k"),
    ({"question": "valve", "top_k": 1000}, "top_k"),
    ({"top_k": 3}, "question"),
    ({"question": 12}, "question"),
])
def test_bad_requests_get_a_4xx_with_a_clear_message(client, body, fragment):
    for route in ("/v1/ask", "/v1/search"):
        reply = client.post(route, json=body)
        assert reply.status_code == 422, reply.text
        assert fragment in reply.json()["detail"]
        assert "Traceback" not in reply.text


def test_malformed_json_is_a_422(client):
    reply = client.post("/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "Invalid request" in reply.json()["detail"]


def test_health_and_docs(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["chunks"] > 10
    assert health["llm_model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert health["embed_model"] in health["embed_models"]
    assert "Chinese" in health["embed_models"]["multilingual-e5-small"]
    # Where the models run, truthfully on this CPU-only build: nothing offloaded.
    assert health["gpu"]["llama_cpp_backend"] == "CPU"
    assert health["gpu"]["gpu_layers"]["offloaded"] == 0
    assert health["gpu"]["gpu_layers"]["model_layers"] == 30
    assert health["gpu"]["embedding_device"] == "cpu" and "vram" in health["gpu"]
    assert client.get("/docs").status_code == 200
    assert "/v1/ask" in client.get("/openapi.json").json()["paths"]


def test_search_filters_over_http(ingested):
    with local_client(create_app(ingested.settings, ingested.library)) as client:
        body = {"question": "how much power", "path": "reports/", "types": ["pdf"]}
        results = client.post("/v1/search", json=body).json()["results"]
    assert results and {r["source"] for r in results} == {"reports/turbine.pdf"}


def test_a_missing_chat_model_is_a_503_before_any_reply_and_search_still_works(tmp_path):
    from rag.library import Library
    from rag.models.loaded import Models
    from tests.conftest import make_settings
    from tests.fakes import FakeEmbedder
    from tests.workspace import Workspace

    settings = make_settings(tmp_path, min_score=0.1, llm_model=tmp_path / "gone.gguf")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "club.md").write_text("# Club\n\nThe rescue launch uses VHF channel 72.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder()))
    Workspace(library).indexer.ingest()
    with local_client(create_app(settings, library)) as client:
        for stream in (False, True):
            reply = client.post("/v1/ask", json={"question": "Which VHF channel?", "stream": stream})
            assert reply.status_code == 503 and "ARCHIVIST_LLM_MODEL" in reply.json()["detail"]
            assert "gone.gguf" in reply.json()["detail"] and ".gguf" in reply.json()["hint"]
        assert client.post("/v1/search", json={"question": "Which VHF channel?"}).json()["results"]
    assert library.models.gate.running == 0 and library.models.gate.waiting == 0


def test_the_answer_mode_can_be_chosen_per_request(client):
    question = "What colour is the emergency valve on the Zephyr turbine?"
    quoted = client.post("/v1/ask", json={"question": question, "mode": "extractive"}).json()
    assert quoted["mode"] == "extractive" and quoted["answer"].startswith("The documents say:")
    assert quoted["sentences"] and all(s["supported"] for s in quoted["sentences"])
    assert client.post("/v1/ask", json={"question": question, "mode": "poetic"}).status_code == 422
