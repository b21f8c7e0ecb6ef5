"""The audit page in a real browser, with stand-in models and a sealed, signed log: an admin sees
the questions asked and filters them; the chain verifies; a reader is told it is for admins."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rag.audit.checkpoints import write_signing_keys
from rag.library import Library
from rag.models.loaded import Models
from rag.storage.sealing import write_key_file
from service.app import create_app
from service.auth import KeyStore
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.server import serve
from tests.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.browser]

QUESTION = "How many days of leave are there?"


@pytest.fixture
def server(tmp_path):
    write_key_file(tmp_path / "audit.key")
    write_signing_keys(tmp_path / "signing.pem")
    settings = make_settings(tmp_path, min_score=0.1, audit_key_file=tmp_path / "audit.key",
                             audit_signing_key_file=tmp_path / "signing.pem")
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "leave.txt").write_text("Leave is 25 days a year.\n")
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator()))
    Workspace(library).indexer.ingest()
    keys = KeyStore(settings.keys_db)
    who = {"admin": keys.create("admin"), "reader": keys.create("reader")}
    keys.close()
    library.default.assistant.ask(QUESTION, mode="extractive")
    with serve(create_app(settings, library=library)) as url:
        yield url, who
    library.close()


def sign_in(page, url, key):
    page.goto(f"{url}/login?next=/audit")
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{url}/audit")


def test_an_admin_reads_filters_and_verifies_the_log(server, page):
    url, who = server
    sign_in(page, url, who["admin"])
    rows = page.locator("#audit-events tbody tr")
    expect(rows.filter(has_text=QUESTION)).to_have_count(1)
    assert rows.count() >= 3  # the ingest, the question, the start, the login...
    page.fill("input[name=action]", "ask")
    page.click("#audit-filters button[type=submit]")
    expect(rows).to_have_count(1)
    shown = rows.first.inner_text()
    assert "local CLI" in shown and ("answered" in shown or "refused" in shown)  # as the fakes decide
    page.click("#audit-verify")
    expect(page.locator("#audit-status")).to_contain_text("Intact")
    assert "Head: event" in page.locator("#audit-head").inner_text()


def test_a_reader_is_told_the_log_is_for_admins(server, page):
    url, who = server
    sign_in(page, url, who["reader"])
    expect(page.locator("#audit-error")).to_contain_text("admins only")
    assert page.locator("#audit-events tbody tr").count() == 0
