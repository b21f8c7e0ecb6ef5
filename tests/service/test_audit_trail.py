"""The audit trail through the real app: every question path recorded with its caller and
request, admin actions, refused credentials, GET /v1/audit for admins only, nothing readable at
rest, a server refusing to start without its key, 100 concurrent asks, a failing log failing the
request.  Fake models (the logic under test is the recording); real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.audit.checkpoints import Verifier, write_signing_keys
from rag.audit.log import AuditKeyError
from rag.audit.reading import verify_log
from rag.library import Library
from rag.models.loaded import Models
from rag.storage.sealing import write_key_file
from service.app import create_app
from service.auth import KeyStore
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.http import local_client
from tests.workspace import Workspace

MARKER = "Quetzalcoatl-4471"
QUESTION = f"What is the budget of project {MARKER}?"


def audit_settings(root, db_url=None, key=True, **extra):
    keys = root / "keys"
    if not keys.exists():
        keys.mkdir()
        write_key_file(keys / "audit.key")
        write_signing_keys(keys / "signing.pem")
    if key:
        extra.update(audit_key_file=keys / "audit.key", audit_signing_key_file=keys / "signing.pem")
    return make_settings(root, min_score=0.1, db_url=db_url, audit_checkpoint_every=10, **extra)


def make_world(root, db_url=None, **extra):
    settings = audit_settings(root, db_url, **extra)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    texts = (("finance", f"The budget of project {MARKER} is 40,000 euros."),
             ("hr", "Leave is 25 days a year."))
    for name, text in texts:
        if name not in library.names():
            library.create(name)
            (settings.data_dir / name / "doc.txt").write_text(text + "\n")
            Workspace(library, name).indexer.ingest()
    return settings, library


@pytest.fixture
def world(tmp_path, db_url):
    settings, library = make_world(tmp_path, db_url)
    keys = KeyStore(settings.keys_db)
    who = {"admin": keys.create("admin"), "reader": keys.create("reader", ["finance"]),
           "editor": keys.create("editor", ["hr"])}
    keys.close()
    with local_client(create_app(settings, library)) as client:
        yield client, library, who
    library.close()


def as_(key):
    return {"X-API-Key": key}


def events(library, **filters):
    return list(reversed(library.audit.events(**filters)))


def test_every_question_path_is_recorded_with_its_caller_and_request(world):
    client, library, who = world
    reader = as_(who["reader"])
    body = {"question": QUESTION, "collection": "finance"}
    asked = client.post("/v1/ask", json=body, headers={**reader, "X-Request-ID": "req-ask-1"})
    assert asked.status_code == 200
    again = client.post("/v1/ask", json=body, headers=reader)
    assert again.json()["cached"]
    streamed = client.post("/v1/ask", json={**body, "question": f"Budget of {MARKER}?",
                                            "stream": True}, headers=reader)
    assert "event: done" in streamed.text
    chat = client.post("/v1/chat", json={**body, "question": f"Is {MARKER} funded?"},
                       headers=reader).json()
    client.post("/v1/chat", json={**body, "question": "And in dollars?",
                                  "conversation_id": chat["conversation_id"]}, headers=reader)
    client.post("/v1/search", json=body, headers=reader)
    client.post("/v1/chat/completions", headers=reader, json={
        "model": "finance", "messages": [{"role": "user", "content": f"{MARKER} budget?"}]})

    log = library.audit
    recorded = [e for e in events(library, collection="finance")
                if e.action in ("ask", "chat", "search", "openai.chat")]
    final = [(e.action, e.outcome.replace("refused", "answered")) for e in recorded
             if e.outcome != "started"]  # refused or answered: the fake models decide
    assert final == [("ask", "answered"), ("ask", "cached"), ("ask", "answered"),
                     ("chat", "answered"), ("chat", "answered"), ("search", "answered"),
                     ("openai.chat", "answered")]
    reader_id = who["reader"].split("_")[1]
    assert {(e.actor, e.role) for e in recorded} == {(reader_id, "reader")}
    first = recorded[0] if recorded[0].outcome != "started" else recorded[1]
    assert first.request_id == "req-ask-1" and asked.headers["x-request-id"] == "req-ask-1"
    details = json.loads(first.details)
    assert details["answer_id"] == asked.json()["answer_id"]
    assert details["passages"][0]["source"] == "doc.txt" and len(details["passages"][0]["content_hash"]) == 64
    assert details["index_version"] and details["embed_model"] == "fake:64"
    secret = log.open_secret(first)
    assert secret["question"] == QUESTION and secret["answer"] == asked.json()["answer"]
    assert first.outcome == ("refused" if asked.json()["refused"] else "answered")
    turns = [e for e in recorded if e.action == "chat" and e.outcome in ("answered", "refused")]
    assert {json.loads(e.details)["conversation_id"] for e in turns} == {chat["conversation_id"]}
    assert log.open_secret(turns[1])["history"]  # the second turn was answered with the first
    started = [e for e in recorded if e.outcome == "started"]
    assert started and all(log.open_secret(e)["question"] for e in started)  # before any token
    assert client.get(f"/v1/answers/{asked.json()['answer_id']}", headers=reader).status_code == 200
    assert client.get(f"/v1/conversations/{chat['conversation_id']}", headers=reader).status_code == 200
    reads = events(library, actor=reader_id)
    assert [e.action for e in reads][-2:] == ["answer.read", "conversation.read"]
    assert verify_log(log, log.signer.public).ok


def test_the_audit_log_is_for_admins_only_and_refusals_are_recorded(world):
    client, library, who = world
    client.post("/v1/search", json={"question": QUESTION, "collection": "finance"},
                headers=as_(who["reader"]))
    for key in ("reader", "editor"):
        denied = client.get("/v1/audit", headers=as_(who[key]))
        assert denied.status_code == 403 and set(denied.json()) == {"detail", "hint"}
        assert MARKER not in denied.text and "events" not in denied.text
        assert client.get("/v1/audit/verify", headers=as_(who[key])).status_code == 403
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers=as_("ak_0badc0de_wrong")).status_code == 401
    # A reader asking another collection: 403, whether it exists or not (nothing learnt).
    for name in ("hr", "nosuch"):
        assert client.post("/v1/search", json={"question": "leave", "collection": name},
                           headers=as_(who["reader"])).status_code == 403

    listing = client.get("/v1/audit", params={"collection": "finance", "action": "search"},
                         headers=as_(who["admin"]))
    assert listing.status_code == 200
    found = listing.json()["events"]
    assert found[0]["secret"]["question"] == QUESTION and found[0]["sealed"]
    failed = events(library, action="auth.failed")
    assert [json.loads(e.details)["claimed_key_id"] for e in failed] == ["0badc0de"]
    denials = events(library, action="access.denied")
    assert {e.actor for e in denials} == {who["reader"].split("_")[1], who["editor"].split("_")[1]}
    assert len(denials) == 6
    reads = events(library, action="audit.list")
    assert reads and reads[-1].actor == who["admin"].split("_")[1]
    verified = client.get("/v1/audit/verify", headers=as_(who["admin"])).json()
    assert verified["ok"] and verified["signatures_checked"] >= 1
    head = client.get("/v1/audit", params={"limit": 1}, headers=as_(who["admin"])).json()["head"]
    assert head["seq"] == library.audit.head()[0]


def test_admin_and_write_actions_are_recorded(world):
    client, library, who = world
    admin = as_(who["admin"])
    made = client.post("/v1/keys", json={"role": "reader", "note": "for Dana"}, headers=admin)
    new_id = made.json()["key"].split("_")[1]
    assert client.delete(f"/v1/keys/{new_id}", headers=admin).status_code == 204
    assert client.delete("/v1/keys/nosuchid", headers=admin).status_code == 404
    assert client.post("/v1/collections", json={"name": "legal"}, headers=admin).status_code == 201
    uploaded = client.post("/v1/documents", params={"collection": "hr"}, headers=as_(who["editor"]),
                           files=[("file", ("memo.txt", b"A memo.\n", "text/plain"))])
    doc_id = uploaded.json()["documents"][0]["id"]
    assert client.delete(f"/v1/documents/{doc_id}", params={"collection": "hr"},
                         headers=as_(who["editor"])).status_code == 204
    assert client.post("/v1/reindex", json={"collection": "hr"}, headers=admin).status_code == 200

    def pairs(action):
        return [(e.outcome, json.loads(e.details)) for e in events(library, action=action)]

    created = pairs("key.create")
    assert [o for o, _ in created] == ["started", "ok"]
    assert created[1][1]["key_id"] == new_id and created[1][1]["note"] == "for Dana"
    assert [o for o, _ in pairs("key.revoke")] == ["started", "ok", "started", "failed"]
    assert [o for o, _ in pairs("collection.create")] == ["started", "ok"]
    upload = pairs("document.upload")
    assert upload[1][1]["stored"] == ["memo.txt"] and upload[1][1]["added"] == 1
    assert pairs("document.delete")[1][1]["source"] == "memo.txt"
    assert [o for o, _ in pairs("reindex")][-2:] == ["started", "ok"]
    editor_events = events(library, actor=who["editor"].split("_")[1])
    assert {e.action for e in editor_events} == {"document.upload", "document.delete"}
    start = events(library, action="server.start")[0]
    shown = json.loads(start.details)
    assert shown["encryption_key_id"] == library.audit.keyring.key_id
    assert shown["settings"]["store"]["db_url"] in (None, "**********")


def test_no_question_or_answer_text_is_stored_in_plain_text(world, tmp_path, db_url):
    client, library, who = world
    reader = as_(who["reader"])
    body = {"question": QUESTION, "collection": "finance"}
    answer = client.post("/v1/ask", json=body, headers=reader).json()["answer"]
    assert MARKER in answer  # the answer quotes the passage: it must be sealed too
    chat = client.post("/v1/chat", json=body, headers=reader).json()
    client.post("/v1/chat", json={**body, "question": f"And {MARKER} in dollars?",
                                  "conversation_id": chat["conversation_id"]}, headers=reader)
    client.post("/v1/search", json=body, headers=reader)
    client.post("/v1/chat/completions", headers=reader, json={
        "model": "finance", "messages": [{"role": "user", "content": QUESTION}]})
    turns = client.get(f"/v1/conversations/{chat['conversation_id']}", headers=reader).json()
    assert turns["turns"][0]["question"] == QUESTION  # readable through the API, with the key

    index = library.settings.index_dir
    plain = [p for p in index.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()
             and "chroma" not in p.parts and not p.name.startswith("lexical")]
    assert plain == []  # the documents' own index (Chroma, the keyword index) holds documents
    if db_url:
        import psycopg

        with psycopg.connect(db_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            assert {"audit_events", "answers"} <= set(tables)
            leaking = [t for t in tables if not t.startswith("lexical") and conn.execute(
                f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE %s', (f"%{MARKER}%",)).fetchone()[0]]
        assert leaking == []


def test_a_server_without_the_key_refuses_to_start(tmp_path, capsys, monkeypatch):
    settings, library = make_world(tmp_path)
    library.collection("finance").assistant.ask(QUESTION)
    library.close()
    bare = audit_settings(tmp_path, key=False)
    with pytest.raises(AuditKeyError, match="no key is configured: refusing"):
        create_app(bare, Library(bare, Models(bare, embedder=FakeEmbedder())))
    from service.cli import main

    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(bare.data_dir))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(bare.index_dir))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "no key is configured" in err and "hint: Set ARCHIVIST_AUDIT_KEY_FILE" in err


def test_100_concurrent_asks_lose_no_event(tmp_path):
    settings, library = make_world(tmp_path)
    with local_client(create_app(settings, library)) as client:
        def ask(i):
            reply = client.post("/v1/ask", headers={"X-Request-ID": f"concurrent-{i}"}, json={
                "question": f"Budget of {MARKER}, take {i}?", "collection": "finance",
                "mode": "extractive"})
            return reply.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            assert set(pool.map(ask, range(100))) == {200}
    log = library.audit
    answered = [e for e in log.events(action="ask") if e.request_id.startswith("concurrent-")]
    assert len(answered) == 100 and len({e.request_id for e in answered}) == 100
    report = verify_log(log, Verifier.from_file(tmp_path / "keys" / "signing.pem.pub"))
    assert report.ok, report.problem
    library.close()


def test_an_answer_that_cannot_be_recorded_is_not_given(tmp_path):
    settings, library = make_world(tmp_path)
    with local_client(create_app(settings, library)) as client:
        log = library.audit
        pages = log.db.execute("PRAGMA page_count").fetchone()[0]
        log.db.execute(f"PRAGMA max_page_count = {pages}")  # the audit log's disk is full
        replies = [client.post("/v1/ask", json={"question": f"Budget of {MARKER} {i}?",
                                                "collection": "finance", "mode": "extractive"})
                   for i in range(60)]
        failed = [r for r in replies if r.status_code != 200]
        assert failed and failed[0].status_code == 503
        assert "audit log could not be written" in failed[0].json()["detail"]
        assert "Free disk space" in failed[0].json()["hint"] and MARKER not in failed[0].text
        log.db.execute("PRAGMA max_page_count = 1073741823")
        assert client.post("/v1/ask", json={"question": QUESTION, "collection": "finance"}).status_code == 200
        assert verify_log(log).ok
    library.close()


def test_the_portal_has_an_audit_page(world):
    client, _, _ = world
    page = client.get("/audit")
    assert page.status_code == 200 and 'data-page="audit"' in page.text
    assert 'data-i18n="audit.verify"' in page.text  # its script is js/audit.js, through main.js
    assert client.get("/portal/static/js/audit.js").status_code == 200
    # every page links to it, hidden until GET /v1/session says the caller is an admin (main.js)
    assert '<a href="/audit" data-nav="audit" data-i18n="nav.audit" hidden>' in client.get("/library").text
