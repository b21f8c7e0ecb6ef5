"""The portal's pages and files as the server sends them (no browser)."""

import re
import tomllib
from pathlib import Path

import pytest
from tests.http import local_client

from service import portal
from service.app import create_app
from tests.workspace import Workspace
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir()
    ws = Workspace.of(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    with local_client(create_app(settings, ws.library)) as client:
        yield client


@pytest.mark.parametrize("path, page", [("/", "ask"), ("/library", "library"), ("/login", "login")])
def test_pages_are_served_with_a_same_origin_only_policy(client, path, page):
    reply = client.get(path)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert f'data-page="{page}"' in reply.text
    policy = reply.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    for asset in re.findall(r'(?:src|href)="(/portal/static/[^"?]+)', reply.text):
        assert client.get(asset).status_code == 200


def test_static_files_and_the_api_docs_still_work(client):
    assert client.get("/portal/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/portal/static/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs").status_code == 200
    assert "/" not in client.get("/openapi.json").json()["paths"]  # pages stay out of the API schema


def test_nothing_is_loaded_from_anywhere_but_this_server():
    for path in (portal.HERE / "templates").iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
    for path in (portal.HERE / "static").iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|@import|url\(\s*['\"]?(https?:)?//", text), path


def test_every_portal_file_is_declared_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["service.portal"]
    files = [p.relative_to(portal.HERE) for p in portal.HERE.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files
    for f in files:
        assert any(f.match(pattern) for pattern in patterns), f"{f} would be missing from the wheel"


def test_every_ui_string_has_english_and_chinese():
    js = (portal.HERE / "static" / "app.js").read_text(encoding="utf-8")
    en = js[js.index("  en: {"):js.index("  zh: {")]
    zh = js[js.index("  zh: {"):js.index("};", js.index("  zh: {"))]
    def keys(block):
        return {a or b for a, b in re.findall(r'(?:^|[{,])\s*(?:"([\w.]+)"|(\w+)): "', block, re.M)}

    assert keys(en) == keys(zh)
    used = set(re.findall(r'data-i18n(?:-aria)?="([\w.]+)"', "".join(
        p.read_text(encoding="utf-8") for p in (portal.HERE / "templates").iterdir())))
    used |= set(re.findall(r'\bt\("([\w.]+)"', js))
    assert used <= keys(en), used - keys(en)
