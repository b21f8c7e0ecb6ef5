"""A server on someone's laptop that a browser tab cannot drive: Host and Origin checks, form
bodies, collection-scoped conversations and answer records, auth in the OpenAPI document."""

import json

import pytest

from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.auth import KeyStore
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.http import LOCAL, local_client
from tests.workspace import Workspace

EVIL = "http://evil.example"


def build(tmp_path, **overrides):
    settings = make_settings(tmp_path, min_score=0.1, **overrides)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "club.md").write_text("# Club\n\nThe rescue launch uses VHF channel 72.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    for name, text in (("finance", "The travel budget is 40,000 euros."),
                       ("hr", "New staff get 25 days of annual leave.")):
        library.create(name)
        (settings.data_dir / name / "doc.txt").write_text(text + "\n")
    for name in library.names():
        Workspace(library, name).indexer.ingest()
    return settings, library


@pytest.fixture
def world(tmp_path):
    settings, library = build(tmp_path)
    with local_client(create_app(settings, library=library)) as client:
        yield client, settings
    library.close()


def test_a_cross_site_form_cannot_create_a_key(world):
    """The attack as tried: a form POST from another site, its body the JSON of a new admin key."""
    client, settings = world
    reply = client.post("/v1/keys", content=b'{"role":"admin"}',
                        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL})
    assert reply.status_code == 403
    assert "evil.example" in reply.json()["detail"] and "ARCHIVIST_ALLOWED_ORIGINS" in reply.json()["hint"]
    keys = KeyStore(settings.keys_path)
    assert keys.list() == [] and not keys.any_keys()  # the real user is not locked out
    keys.close()


def test_a_cross_site_upload_is_refused_and_stores_nothing(world):
    client, settings = world
    reply = client.post("/v1/documents", headers={"Origin": EVIL},
                        files=[("file", ("planted.txt", b"Wire the money to account 666.\n", "text/plain"))])
    assert reply.status_code == 403
    assert not (settings.data_dir / "planted.txt").exists()
    assert "planted.txt" not in {d["source"] for d in client.get("/v1/documents").json()["documents"]}


@pytest.mark.parametrize("headers", [
    {"Origin": "null"},                              # sandboxed frame, file:// page
    {"Origin": "http://127.0.0.1:9999"},             # another local server's page
    {"Origin": "http://localhost:8000"},             # same port, other name: another origin
    {"Sec-Fetch-Site": "cross-site"},                # a browser that left Origin out
])
def test_other_origins_cannot_change_anything(world, headers):
    client, _ = world
    assert client.post("/v1/collections", json={"name": "planted"}, headers=headers).status_code == 403
    assert client.delete("/v1/session", headers=headers).status_code == 403


def test_the_servers_own_pages_curl_and_sdks_keep_working(world):
    client, settings = world
    own = client.post("/v1/collections", json={"name": "ops"}, headers={"Origin": LOCAL})
    assert own.status_code == 201
    # curl -d '{...}' labels JSON as a form; no Origin: not a web page.
    curl = client.post("/v1/search", content=b'{"question": "VHF channel"}',
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert curl.status_code == 200 and curl.json()["results"]
    bare = client.post("/v1/search", content=b'{"question": "VHF channel"}', headers={"Content-Type": ""})
    assert bare.status_code == 200
    # Reads from other pages are harmless (no CORS headers: the page cannot see the reply).
    assert client.get("/v1/health", headers={"Origin": EVIL}).status_code == 200


def test_a_same_site_form_body_is_still_read_as_json(world):
    client, _ = world
    reply = client.post("/v1/search", content=b'{"question": "VHF channel"}',
                        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": LOCAL})
    assert reply.status_code == 200


def test_a_foreign_host_header_is_refused(world):
    """What DNS rebinding produces: the attacker's name, resolved to 127.0.0.1."""
    client, _ = world
    for host in ("evil.example:8000", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example"):
        reply = client.get("/v1/health", headers={"Host": host})
        assert reply.status_code == 400, host
        assert "ARCHIVIST_ALLOWED_HOSTS" in reply.json()["hint"]
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000"):
        assert client.get("/v1/health", headers={"Host": host}).status_code == 200, host
    # OpenAI clients get the error in OpenAI's shape.
    models = client.get("/v1/models", headers={"Host": "evil.example"})
    assert models.status_code == 400 and "host name" in models.json()["error"]["message"]


def test_allowed_hosts_and_origins_come_from_the_settings(tmp_path):
    settings, library = build(tmp_path, allowed_hosts=["docs.example.org"],
                              allowed_origins=["https://portal.example.org"])
    with local_client(create_app(settings, library=library)) as client:
        assert client.get("/v1/health", headers={"Host": "docs.example.org"}).status_code == 200
        assert client.get("/v1/health", headers={"Host": "evil.example"}).status_code == 400
        trusted = client.post("/v1/search", json={"question": "VHF"},
                              headers={"Origin": "https://portal.example.org"})
        assert trusted.status_code == 200
        # Served as docs.example.org behind a TLS proxy: its own pages send an https Origin.
        proxied = client.post("/v1/search", json={"question": "VHF"},
                              headers={"Host": "docs.example.org", "Origin": "https://docs.example.org"})
        assert proxied.status_code == 200
    library.close()


def test_bound_to_every_interface_ip_hosts_pass_and_names_need_listing(tmp_path):
    settings, library = build(tmp_path, host="0.0.0.0")
    with local_client(create_app(settings, library=library)) as client:
        assert client.get("/v1/health", headers={"Host": "192.168.1.20:8000"}).status_code == 200
        assert client.get("/v1/health", headers={"Host": "intranet.example:8000"}).status_code == 400
    library.close()


def test_a_key_sees_only_its_collections_conversations_and_answers(world):
    client, settings = world
    keys = KeyStore(settings.keys_path)
    finance, hr = keys.create("reader", ["finance"]), keys.create("reader", ["hr"])
    admin = keys.create("admin")
    keys.close()
    as_finance = {"Authorization": f"Bearer {finance}"}
    as_hr = {"Authorization": f"Bearer {hr}"}
    chat = client.post("/v1/chat", json={"question": "What is the travel budget?", "collection": "finance"},
                       headers=as_finance).json()
    conversation, answer = chat["conversation_id"], chat["answer_id"]
    assert client.get(f"/v1/conversations/{conversation}", headers=as_finance).json()["collection"] == "finance"

    for path in (f"/v1/conversations/{conversation}", f"/v1/answers/{answer}"):
        denied = client.get(path, headers=as_hr)
        assert denied.status_code == 404, path  # not 403: nothing says it exists
        assert "budget" not in denied.text
    # Continuing the conversation from another collection does not pull its turns in.
    crossed = client.post("/v1/chat", headers=as_hr, json={
        "question": "And for leave?", "collection": "hr", "conversation_id": conversation})
    assert crossed.status_code == 404 and "budget" not in crossed.text
    # Nor with a key that may read both, naming the wrong collection.
    crossed = client.post("/v1/chat", headers={"Authorization": f"Bearer {admin}"}, json={
        "question": "And for leave?", "collection": "hr", "conversation_id": conversation})
    assert crossed.status_code == 404


def test_the_api_reference_shows_how_to_authenticate(world):
    client, _ = world
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    kinds = {(s["type"], s.get("scheme") or s.get("in")) for s in schemes.values()}
    assert kinds == {("http", "bearer"), ("apiKey", "header"), ("apiKey", "cookie")}
    assert spec["paths"]["/v1/ask"]["post"]["security"]


def test_export_refuses_while_a_server_is_registered_and_never_archives_its_token(tmp_path, capsys):
    import os
    import tarfile

    from service import handoff
    from service.cli import main

    settings, library = build(tmp_path)
    library.close()
    env = {"ARCHIVIST_DATA_DIR": str(settings.data_dir), "ARCHIVIST_INDEX_DIR": str(settings.index_dir)}
    os.environ.update(env)
    try:
        with handoff.register(settings, "127.0.0.1", 8000) as token:
            assert main(["export", str(tmp_path / "live.tar.gz")]) == 2
            assert "serving this index" in capsys.readouterr().err
            assert not (tmp_path / "live.tar.gz").exists()
            # A registration left behind by a killed server: export goes ahead, without it.
            (settings.index_dir / "server.json").write_text(json.dumps(
                {"pid": 2 ** 22 + 1, "url": "http://127.0.0.1:8000", "token": token}))
            assert main(["export", str(tmp_path / "snap.tar.gz")]) == 0
    finally:
        for key in env:
            os.environ.pop(key)
    with tarfile.open(tmp_path / "snap.tar.gz") as tar:
        names = tar.getnames()
        assert not any(name.endswith("server.json") for name in names)
        assert all(token not in tar.extractfile(m).read().decode("latin-1") for m in tar if m.isfile())


def test_records_made_before_collections_were_recorded_keep_their_collection(tmp_path):
    """Migration 002 files each older answer under the collection its provenance names, and each
    conversation under its first answer's."""
    from rag.storage.answer_records import MIGRATIONS, Records
    from rag.storage.database import connect, migrate

    path = tmp_path / "answers.sqlite3"
    db = connect(path)
    migrate(db, MIGRATIONS[:1])
    answer = json.dumps({"answer": "x", "citations": [], "refused": False})
    for answer_id, collection in (("a1", "finance"), ("a2", "hr")):
        db.execute("INSERT INTO answers VALUES (?, 0, 'q', 'q', NULL, ?, ?)",
                   (answer_id, answer, json.dumps({"collection": collection})))
    db.execute("INSERT INTO conversations VALUES ('c1', 0)")
    db.execute("INSERT INTO turns VALUES ('c1', 1, 'a2')")
    db.close()
    records = Records(path)
    assert records.get_answer("a1")["collection"] == "finance"
    assert records.conversation_collection("c1") == "hr"
    assert records.conversation_collection("nope") is None
    records.close()
