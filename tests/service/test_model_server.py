"""Generation on OpenAI-compatible model servers (ARCHIVIST_LLM_URL), against a real
`python -m llama_cpp.server` with the bundled model: answers stream through it, a dead server is a
503 naming it while search keeps working, the next question after it returns is answered, and a
list of servers fails over and takes turns."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.core.errors import GenerationError
from rag.core.sections import LlmConfig, ModelServers, SamplingParams
from rag.models.remote_generator import (ModelServerUnavailableError, OpenAICompatibleGenerator,
                                         estimate_tokens)
from service.app import create_app
from tests.http import local_client
from tests.model_server import ModelServer
from tests.server import free_port
from tests.service.test_streaming import parse_events
from tests.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
QUESTION = {"question": "What VHF channel does the rescue launch use?", "mode": "generative"}


@pytest.fixture(scope="module")
def model_server():
    server = ModelServer().start()
    yield server
    server.stop()


def _workspace(tmp_path, embedder, urls, **overrides) -> Workspace:
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data" / "harbour-light-handbook.md", tmp_path / "data")
    ws = Workspace.make(tmp_path, embedder, None, llm_url=urls, llm_retries=0, **overrides)
    assert ws.indexer.ingest().failed == 0
    return ws


def test_answers_come_from_the_model_server_streamed_and_not(tmp_path, real_embedder, model_server):
    ws = _workspace(tmp_path, real_embedder, [model_server.url])
    with local_client(create_app(ws.settings, ws.library)) as client:
        reply = client.post("/v1/ask", json=QUESTION)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert not body["refused"] and body["mode"] == "generative" and body["answer"].strip()
        assert body["citations"][0]["source"] == "harbour-light-handbook.md"

        streamed = client.post("/v1/ask", json={**QUESTION, "question": "Who crews the rescue "
                                                "launch?", "stream": True})
        kinds = [kind for kind, _ in parse_events(streamed.text)]
        assert kinds[0] == "citations" and "token" in kinds and kinds[-1] == "done"
    record = ws.records.get_answer(body["answer_id"])
    assert model_server.url in record["provenance"]["llm_model"]  # where it was generated


def test_a_dead_model_server_is_a_503_naming_it_search_works_and_its_return_is_noticed(
        tmp_path, real_embedder):
    server = ModelServer().start()
    try:
        ws = _workspace(tmp_path, real_embedder, [server.url])
        with local_client(create_app(ws.settings, ws.library)) as client:
            server.stop()
            reply = client.post("/v1/ask", json=QUESTION)
            assert reply.status_code == 503, reply.text
            assert server.url in reply.json()["detail"]
            assert "llama_cpp.server" in reply.json()["hint"]
            assert client.post("/v1/search", json=QUESTION | {"mode": None}).status_code == 200
            server.start()
            reply = client.post("/v1/ask", json={**QUESTION, "question": "Who crews the rescue launch?"})
            assert reply.status_code == 200 and reply.json()["answer"].strip(), reply.text
    finally:
        server.stop()


def test_a_server_that_does_not_answer_is_skipped_for_the_next(model_server, real_generator):
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    generator = OpenAICompatibleGenerator(LlmConfig(servers=ModelServers(
        url=[nobody, model_server.url], retries=0)))
    messages = [{"role": "user", "content": "Say hello."}]
    params = SamplingParams(max_tokens=8)
    for _ in range(2):  # whichever server's turn it is, the reply comes from the live one
        assert "".join(generator.generate(messages, params)).strip()
    # the served model's own tokenizer counts, as the in-process one does
    text = "The rescue launch is crewed by two volunteers. 救援艇由两名志愿者驾驶。"
    assert abs(generator.count_tokens(text) - real_generator.count_tokens(text)) <= 1
    generator.close()


class _Stub(BaseHTTPRequestHandler):
    """A model server speaking just enough SSE: its name as the reply; 'broken' ones hang up
    after the first piece."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunk = {"choices": [{"delta": {"content": self.server.label}}]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()
        if self.server.label == "broken":
            self.connection.shutdown(2)  # gone mid-reply
            return
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


def _stub(label: str) -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    httpd.label = label
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def test_servers_take_turns_and_one_dying_mid_reply_is_a_clear_error():
    (a, url_a), (b, url_b), (c, url_c) = _stub("a"), _stub("b"), _stub("broken")
    try:
        turns = OpenAICompatibleGenerator(LlmConfig(servers=ModelServers(url=[url_a, url_b])))
        replies = ["".join(turns.generate([], SamplingParams())) for _ in range(4)]
        assert replies == ["a", "b", "a", "b"]
        turns.close()

        broken = OpenAICompatibleGenerator(LlmConfig(servers=ModelServers(url=[url_c])))
        with pytest.raises(GenerationError, match="stopped in the middle"):
            "".join(broken.generate([], SamplingParams()))
        broken.close()

        nobody = OpenAICompatibleGenerator(LlmConfig(servers=ModelServers(
            url=[f"http://127.0.0.1:{free_port()}/v1"], retries=1)))
        with pytest.raises(ModelServerUnavailableError, match="No model server answered"):
            list(nobody.generate([], SamplingParams()))
        nobody.close()
    finally:
        for httpd in (a, b, c):
            httpd.shutdown()
            httpd.server_close()


@pytest.mark.parametrize("text", ["Passwords are changed every 180 days.",
                                  "住宿费标准为每人每晚六百元。", "pg_stat_io, 0x1F, v2.3.1-rc"])
def test_the_token_estimate_never_undercounts(real_generator, text):
    assert estimate_tokens(text) >= real_generator.count_tokens(text)
