"""The vectors on a real Chroma server (ARCHIVIST_CHROMA_URL): the same index, the same answers,
nothing of Chroma written locally, and a server that goes away is a clear 503, not a crash."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ingest.snapshot import SnapshotError, export_index, import_index
from rag.core.errors import IndexMismatchError, StoreUnavailableError
from rag.storage.chunk_store import ChromaTarget, ChunkStore, collection_names
from service.app import create_app
from tests.chroma_server import ChromaServer
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder
from tests.http import local_client
from tests.workspace import Workspace

QUESTIONS = ["Which port does the metrics exporter listen on?", "What colour is the emergency valve?",
             "夜间值班的联系电话是多少？"]


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server
    server.stop()


def _results(ws: Workspace) -> list[list[tuple[str, str, float]]]:
    return [[(c.source, c.chunk_id, round(c.score, 4)) for c in ws.assistant.search(q, 4)]
            for q in QUESTIONS]


def _on_server(tmp_path, name, chroma, **overrides) -> Workspace:
    return Workspace.make(tmp_path / name, embedder=FakeEmbedder(), chroma_url=chroma.url,
                          collection="default", **overrides)


def test_an_index_on_the_server_searches_like_the_embedded_one(tmp_path, data_dir, chroma):
    embedded = Workspace.make(tmp_path, embedder=FakeEmbedder())
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "data").symlink_to(data_dir)
    remote = _on_server(tmp_path, "remote", chroma)
    assert embedded.indexer.ingest().failed == 0
    report = remote.indexer.ingest()
    assert report.failed == 0 and report.chunks_embedded == embedded.store.count() > 0

    assert _results(remote) == _results(embedded) and _results(remote)[0]
    assert not (remote.settings.index_dir / "chroma").exists()  # nothing of Chroma written here
    assert "default" in collection_names(remote.settings.chroma)

    # reindex builds the next generation on the server, switches, and drops the old one there
    remote.indexer.reindex()
    names = collection_names(remote.settings.chroma)
    assert "default-g1" in names and "default" not in names
    assert _results(remote) == _results(embedded)
    assert remote.indexer.ingest().chunks_embedded == 0  # unchanged files: nothing re-embedded


def test_the_embedding_fingerprint_guard_holds_on_the_server(chroma):
    target = ChromaTarget(chroma.path, chroma.url)
    ChunkStore(target, "guarded", {"embed_model": "model-a"})
    with pytest.raises(IndexMismatchError, match="model-a"):
        ChunkStore(target, "guarded", {"embed_model": "model-b"})


def test_a_server_that_goes_away_is_a_503_naming_it_and_search_returns_with_it(tmp_path, data_dir):
    server = ChromaServer(tmp_path / "chroma-data").start()
    try:
        ws = Workspace.make(tmp_path, embedder=FakeEmbedder(), chroma_url=server.url)
        assert ws.indexer.ingest().failed == 0
        with local_client(create_app(ws.settings, ws.library)) as client:
            body = {"question": QUESTIONS[0]}
            assert client.post("/v1/search", json=body).status_code == 200
            server.stop()
            reply = client.post("/v1/search", json=body)
            assert reply.status_code == 503, reply.text
            assert server.url in reply.json()["detail"] and "chroma run" in reply.json()["hint"]
            server.start()  # same port, same data: the next request succeeds
            reply = client.post("/v1/search", json=body)
            assert reply.status_code == 200 and reply.json()["results"]
    finally:
        server.stop()


def test_an_embedded_index_moves_onto_the_server_by_export_and_import(tmp_path, data_dir, chroma):
    embedded = Workspace.make(tmp_path, embedder=FakeEmbedder(), collection="default")
    assert embedded.indexer.ingest().failed == 0
    archive = tmp_path / "snap.tar.gz"
    export_index(embedded.settings, archive)

    target = make_settings(tmp_path / "moved", chroma_url=chroma.url, collection="default")
    target = target.model_copy(update={"data_dir": embedded.settings.data_dir})
    # a server that already holds those collections is not overwritten unless asked
    ChunkStore(target.chroma, "default", embedded.collection.build_info())
    with pytest.raises(SnapshotError, match="already has the collection"):
        import_index(target, archive)
    import_index(target, archive, force=True)
    moved = Workspace.of(target, embedder=FakeEmbedder())
    assert _results(moved) == _results(embedded)
    assert not (target.index_dir / "chroma").exists()
    assert moved.indexer.ingest().chunks_embedded == 0  # the manifest came along: nothing to redo

    # and back: an export from server mode holds the vectors, like an embedded one
    archive2 = tmp_path / "from-server.tar.gz"
    manifest = export_index(target, archive2)
    assert "chroma/chroma.sqlite3" in manifest["files"]
    back = make_settings(tmp_path / "back").model_copy(update={"data_dir": embedded.settings.data_dir})
    import_index(back, archive2)
    assert _results(Workspace.of(back, embedder=FakeEmbedder())) == _results(embedded)


def test_an_embedded_index_moves_onto_chroma_and_postgresql_by_export_and_import(
        tmp_path, data_dir, chroma, postgres_server):
    """The whole migration of docs/deploy.md: vectors onto the Chroma server, the keyword index,
    manifest and generation into PostgreSQL; nothing embedded again, nothing left locally."""
    embedded = Workspace.make(tmp_path, embedder=FakeEmbedder(), collection="default")
    assert embedded.indexer.ingest().failed == 0
    embedded.indexer.reindex()  # generation 1: the pointer must come along too
    archive = tmp_path / "snap.tar.gz"
    export_index(embedded.settings, archive)

    db_url = postgres_server.fresh_database()
    target = make_settings(tmp_path / "moved", chroma_url=chroma.url, db_url=db_url,
                           collection="default")
    target = target.model_copy(update={"data_dir": embedded.settings.data_dir})
    import_index(target, archive, force=True)  # force: the other tests' collections are there
    moved = Workspace.of(target, embedder=FakeEmbedder())
    assert _results(moved) == _results(embedded)
    assert moved.collection.views.reading().__enter__().generation == 1
    assert not list(target.index_dir.rglob("*.sqlite3"))
    assert moved.indexer.ingest().chunks_embedded == 0  # the manifest came along: nothing to redo
    with pytest.raises(SnapshotError, match="database already holds the collection"):
        import_index(make_settings(tmp_path / "again", db_url=db_url)  # embedded vectors
                     .model_copy(update={"data_dir": embedded.settings.data_dir}), archive)
    moved.library.close()


def test_the_token_is_sent_and_a_refusal_says_where(tmp_path):
    seen: list[str | None] = []

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "Unauthorized", "message": "bad token"}')

        do_POST = do_GET

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with pytest.raises(StoreUnavailableError, match=url) as err:
            ChunkStore(ChromaTarget(tmp_path, url, "s3cret"), "anything", {})
        assert "ARCHIVIST_CHROMA_TOKEN" in err.value.hint
        assert seen and seen[0] == "Bearer s3cret"
    finally:
        httpd.shutdown()
        httpd.server_close()
