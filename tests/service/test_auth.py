"""API keys and roles: hashed storage, 401/403 by role and collection, portal sessions, serve guard."""

import pytest
from tests.http import local_client

from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.auth import KeyStore
from service.cli import main
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace


@pytest.fixture
def world(tmp_path, db_url):
    settings = make_settings(tmp_path, min_score=0.1, db_url=db_url)
    settings.data_dir.mkdir(parents=True)
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    for name, text in (("finance", "The budget is 40,000 euros."), ("hr", "Leave is 25 days.")):
        library.create(name)
        (settings.data_dir / name / "doc.txt").write_text(text + "\n")
        Workspace(library, name).indexer.ingest()
    client = local_client(create_app(settings, library=library))
    keys = KeyStore(settings.keys_db)
    with client:
        yield client, keys
    keys.close()
    library.close()


def search(client, collection, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/v1/search", json={"question": "budget leave", "collection": collection},
                       headers=headers)


def upload(client, collection, key):
    return client.post("/v1/documents", params={"collection": collection},
                       headers={"X-API-Key": key}, files=[("file", ("n.txt", b"A note.\n", "text/plain"))])


def test_without_keys_the_local_user_may_do_everything(world):
    client, _ = world
    assert search(client, "hr").status_code == 200
    assert client.get("/v1/session").json()["role"] == "admin"


def test_roles_and_collections_are_enforced(world):
    client, keys = world
    reader = keys.create("reader", ["finance"])
    editor = keys.create("editor", ["hr"])
    admin = keys.create("admin")
    assert reader.startswith("ak_") and reader not in (keys._db.execute("SELECT hash FROM keys").fetchall()[0])

    missing = search(client, "finance")
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["hint"]
    assert search(client, "finance", "ak_wrong").status_code == 401
    assert search(client, "finance", reader).status_code == 200
    denied = search(client, "hr", reader)
    assert denied.status_code == 403 and "keys create" in denied.json()["hint"]
    assert search(client, "nosuch", reader).status_code == 403  # no probing for collection names
    assert upload(client, "finance", reader).status_code == 403
    assert upload(client, "hr", editor).status_code == 201
    assert upload(client, "finance", editor).status_code == 403
    assert client.post("/v1/collections", json={"name": "legal"},
                       headers={"X-API-Key": editor}).status_code == 403
    assert client.post("/v1/collections", json={"name": "legal"},
                       headers={"X-API-Key": admin}).status_code == 201
    listed = client.get("/v1/collections", headers={"X-API-Key": reader}).json()["collections"]
    assert [c["name"] for c in listed] == ["finance"]


def test_portal_session_cookie_and_revocation(world):
    client, keys = world
    reader = keys.create("reader", ["finance"], note="portal user")
    assert client.post("/v1/session", json={"key": "ak_nope"}).status_code == 401
    login = client.post("/v1/session", json={"key": reader})
    assert login.status_code == 200 and "httponly" in login.headers["set-cookie"].lower()
    assert search(client, "finance").status_code == 200  # the cookie carries the session
    key_id = login.json()["key_id"]
    keys.revoke(key_id)
    assert search(client, "finance").status_code == 401
    assert search(client, "finance", reader).status_code == 401


def test_admin_manages_keys_over_http(world):
    client, keys = world
    admin = keys.create("admin")
    made = client.post("/v1/keys", json={"role": "reader", "collections": ["hr"]},
                       headers={"X-API-Key": admin})
    assert made.status_code == 201
    assert search(client, "hr", made.json()["key"]).status_code == 200
    listed = client.get("/v1/keys", headers={"X-API-Key": admin}).json()["keys"]
    assert {k["role"] for k in listed} == {"admin", "reader"} and all("hash" not in k for k in listed)
    reader_id = next(k["id"] for k in listed if k["role"] == "reader")
    assert client.get("/v1/keys", headers={"X-API-Key": made.json()["key"]}).status_code == 403
    assert client.delete(f"/v1/keys/{reader_id}", headers={"X-API-Key": admin}).status_code == 204


def test_cli_keys_and_the_serve_guard(tmp_path, monkeypatch, capsys, db_url):
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    if db_url:
        monkeypatch.setenv("ARCHIVIST_DB_URL", db_url)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "without API keys" in capsys.readouterr().err
    assert main(["keys", "create", "--role", "reader", "--collection", "nosuch"]) == 2
    capsys.readouterr()
    assert main(["keys", "create", "--role", "editor"]) == 0
    key = capsys.readouterr().out.strip()
    keys = KeyStore(db_url or tmp_path / "index" / "keys.sqlite3")
    assert keys.verify(key).role == "editor"
    keys.close()
    assert main(["keys", "list", "--json"]) == 0
    assert key not in capsys.readouterr().out  # shown once, never again
