"""Embedding on OpenAI-compatible servers (ARCHIVIST_EMBED_URL), against a real `archivist` HTTP
server with the real embedding model: an index built through it is the one a local ingest builds
(same chunks, same vectors' fingerprint, same ranking), a dead list member is skipped, no server
at all is a 503-class error naming them, and another kind of server's vectors get a fingerprint
of their own."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.core.sections import EmbeddingConfig, EmbeddingServers
from rag.models.remote_embedder import EmbeddingServerUnavailableError, OpenAICompatibleEmbedder
from service.app import create_app
from service.errors import status_for
from tests.server import free_port, serve
from tests.workspace import Workspace

QUESTIONS = ["Which port does the metrics exporter listen on?", "员工每年有多少天带薪年假？"]


@pytest.fixture(scope="module")
def embedding_server(ingested):
    """`archivist serve`'s app with the real embedding model, on a loopback port."""
    with serve(create_app(ingested.settings, ingested.library)) as url:
        yield f"{url}/v1"


def test_an_index_built_through_the_server_is_the_local_one(tmp_path, corpus, ingested,
                                                           embedding_server):
    shutil.copytree(corpus, tmp_path / "data")
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    remote = Workspace.make(tmp_path, None, None, embed_url=[nobody, embedding_server],
                            embed_retries=0)
    assert remote.indexer.ingest().failed == 0
    embedder = remote.library.models.embedder
    assert embedder.fingerprint == ingested.library.models.embedder.fingerprint
    for question in QUESTIONS:
        here = [(c.chunk_id, round(c.score, 4)) for c in ingested.assistant.search(question, 5)]
        there = [(c.chunk_id, round(c.score, 4)) for c in remote.assistant.search(question, 5)]
        assert there == here, question
    assert remote.store.count() == ingested.store.count()
    remote.library.close()


def test_no_server_answering_is_an_error_naming_them(tmp_path):
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(EmbeddingServerUnavailableError) as caught:
        OpenAICompatibleEmbedder(EmbeddingConfig(servers=EmbeddingServers(url=urls, retries=0)))
    assert all(url in str(caught.value) for url in urls)
    assert status_for(caught.value) == 503 and "ARCHIVIST_EMBED_URL" in caught.value.hint


class _Other(BaseHTTPRequestHandler):
    """A server that is not Archivist: unnormalised 3-d vectors and no `archivist` field."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = [{"index": i, "embedding": [3.0, 4.0, float(len(text))]}
                for i, text in reversed(list(enumerate(body["input"])))]  # any order
        reply = json.dumps({"data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_another_servers_vectors_are_normalised_and_fingerprinted_as_its_own():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Other)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        embedder = OpenAICompatibleEmbedder(EmbeddingConfig(
            embed_model="no-such-local-model",
            servers=EmbeddingServers(url=[url], served_model="bge-m3")))
        assert embedder.fingerprint == "bge-m3@served:3" and embedder.dimension == 3
        a, b = embedder.embed(["", "abcd"])
        assert a == pytest.approx([0.6, 0.8, 0.0]) and sum(v * v for v in b) == pytest.approx(1.0)
        # no local tokenizer for that model: a count that never undercounts (bytes)
        assert embedder.count_tokens("年假 days") == len("年假 days".encode())
        embedder.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_collection_on_another_shipped_model_embeds_through_the_same_server(embedding_server,
                                                                                e5_embedder):
    """The server runs all-MiniLM-L6-v2 for its own collections; a collection that chose
    multilingual-e5-small asks it by name and gets that model's vectors and fingerprint."""
    embedder = OpenAICompatibleEmbedder(EmbeddingConfig(
        embed_model="multilingual-e5-small", servers=EmbeddingServers(url=[embedding_server])))
    try:
        assert embedder.fingerprint == e5_embedder.fingerprint
        assert embedder.max_tokens == e5_embedder.max_tokens
        for kind in ("query", "passage"):
            there, here = embedder.embed(QUESTIONS, kind), e5_embedder.embed(QUESTIONS, kind)
            for a, b in zip(there, here):
                assert sum(x * y for x, y in zip(a, b)) > 0.9999
    finally:
        embedder.close()
