"""Two replicas (two Libraries with their own index folders, as on two hosts) over one Chroma
server and one PostgreSQL database: a file ingested through one is found by the other at once, a
reindex on one moves the other to the new generation at its next request, and keys and
conversations work on both."""

from __future__ import annotations

import pytest

from rag.core.errors import StoreUnavailableError
from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.auth import KeyStore
from tests.chroma_server import ChromaServer
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.http import local_client
from tests.workspace import Workspace

QUESTION = "Which port does the metrics exporter listen on?"


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    server = ChromaServer(tmp_path_factory.mktemp("chroma-replicas")).start()
    yield server
    server.stop()


def _replica(root, data_dir, chroma, db_url) -> Workspace:
    root.mkdir()
    (root / "data").symlink_to(data_dir)  # the shared document store
    settings = make_settings(root, chroma_url=chroma.url, db_url=db_url, min_score=0.1)
    return Workspace(Library(settings, Models(settings, embedder=FakeEmbedder(),
                                              generator=FakeGenerator())))


def _hits(ws: Workspace, question: str = QUESTION) -> list[tuple[str, str]]:
    return [(c.source, c.chunk_id) for c in ws.assistant.search(question, 4)]


def test_replicas_share_the_index_its_generations_keys_and_conversations(
        tmp_path, data_dir, chroma, postgres_server):
    db_url = postgres_server.fresh_database()
    a = _replica(tmp_path / "a", data_dir, chroma, db_url)
    b = _replica(tmp_path / "b", data_dir, chroma, db_url)
    try:
        assert a.indexer.ingest().failed == 0
        assert _hits(b) == _hits(a) and _hits(b)  # b never ingested anything

        (data_dir / "ferry.txt").write_text("The ferry to Kerrowan leaves at 07:40 from pier 3.\n")
        assert a.indexer.ingest().added == 1
        assert _hits(b, "ferry Kerrowan pier")[0][0] == "ferry.txt"

        before = _hits(b)
        a.indexer.reindex()  # generation 1, and generation 0 dropped from the servers
        assert _hits(b) == before
        with b.collection.views.reading() as stale:
            assert stale.generation == 1
            a.indexer.reindex()  # generation 2; A drops generation 1 while B still reads it
            with pytest.raises(StoreUnavailableError, match="reindex elsewhere"):
                stale.store.query([1.0] * 64, 4)
        assert _hits(b) == before  # B's next request reads generation 2

        keys = KeyStore(a.settings.keys_db)
        admin = keys.create("admin")
        keys.close()
        with local_client(create_app(a.settings, a.library)) as on_a, \
                local_client(create_app(b.settings, b.library)) as on_b:
            as_admin = {"X-API-Key": admin}
            made = on_a.post("/v1/keys", json={"role": "reader"}, headers=as_admin)
            assert made.status_code == 201
            reader = {"X-API-Key": made.json()["key"]}
            assert on_b.post("/v1/search", json={"question": QUESTION}, headers=reader).status_code == 200
            assert on_b.post("/v1/search", json={"question": QUESTION}).status_code == 401

            first = on_a.post("/v1/chat", json={"question": QUESTION}, headers=as_admin)
            conversation = first.json()["conversation_id"]
            follow = on_b.post("/v1/chat", json={"question": "And on which host?",
                                                 "conversation_id": conversation}, headers=as_admin)
            assert follow.status_code == 200 and follow.json()["conversation_id"] == conversation
            turns = on_b.get(f"/v1/conversations/{conversation}", headers=as_admin).json()["turns"]
            assert [t["question"] for t in turns] == [QUESTION, "And on which host?"]
    finally:
        a.library.close()
        b.library.close()
