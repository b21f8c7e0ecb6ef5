"""The portal's pages and files as the server sends them (no browser)."""

import re
import tomllib
from pathlib import Path
from urllib.parse import urljoin

import pytest
from tests.http import local_client

from service import portal
from service.app import create_app
from tests.workspace import Workspace
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator

ROOT = Path(__file__).resolve().parents[2]
STATIC = portal.HERE / "static"
IMPORT = re.compile(r'^import \{ ([\w, ]+) \} from "([^"]+)";$', re.M)
EXPORT = re.compile(r"^export (?:async )?(?:function\*?|class|const|let) *(\w+)", re.M)


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
    script = client.get("/portal/static/js/main.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"  # revalidated: the modules carry no ?v=
    etag = script.headers["etag"]
    again = client.get("/portal/static/js/main.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
    assert client.get("/portal/static/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs").status_code == 200
    assert "/" not in client.get("/openapi.json").json()["paths"]  # pages stay out of the API schema


def test_nothing_is_loaded_from_anywhere_but_this_server():
    for path in (portal.HERE / "templates").iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"https?://|@import|url\(\s*['\"]?(https?:)?//", text), path


def test_the_pages_load_one_module_and_every_module_it_imports_is_served_as_javascript(client):
    # Browsers refuse a module graph whole if one file is missing, is not served as JavaScript or
    # lacks a name another imports: the page would then have no script at all.
    scripts = re.findall(r"<script\b[^>]*>", client.get("/").text)
    assert len(scripts) == 1 and 'type="module"' in scripts[0], scripts
    entry = re.search(r'src="([^"?]+)', scripts[0]).group(1)
    assert entry == "/portal/static/js/main.js"
    modules: dict[str, str] = {}
    todo = [entry]
    while todo:
        url = todo.pop()
        if url in modules:
            continue
        reply = client.get(url)
        assert reply.status_code == 200, url
        assert reply.headers["content-type"].startswith("text/javascript"), url
        modules[url] = reply.text
        lines = reply.text.splitlines()
        imports = [line for line in lines if re.match(r"\s*(import|export .* from)\b", line)]
        assert len(imports) == len(IMPORT.findall(reply.text)), f"{url}: an import of another form"
        for _, spec in IMPORT.findall(reply.text):
            assert re.fullmatch(r"\./[\w-]+\.js", spec), f"{url}: {spec}"  # this folder, by path
            todo.append(urljoin(url, spec))
    for url, text in modules.items():
        for names, spec in IMPORT.findall(text):
            exported = set(EXPORT.findall(modules[urljoin(url, spec)]))
            wanted = {name.strip() for name in names.split(",")}
            assert wanted <= exported, f"{url} imports {wanted - exported}, not exported by {spec}"
    on_disk = {f"/portal/static/{p.relative_to(STATIC).as_posix()}" for p in STATIC.rglob("*.js")}
    assert set(modules) == on_disk  # no module left out of the graph


def test_every_portal_file_is_declared_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["service.portal"]
    files = [p.relative_to(portal.HERE) for p in portal.HERE.rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files
    for f in files:
        assert any(f.match(pattern) for pattern in patterns), f"{f} would be missing from the wheel"


def test_every_ui_string_has_english_and_chinese():
    strings = (STATIC / "js" / "strings.js").read_text(encoding="utf-8")
    en = strings[strings.index("  en: {"):strings.index("  zh: {")]
    zh = strings[strings.index("  zh: {"):strings.index("};", strings.index("  zh: {"))]
    def keys(block):
        return {a or b for a, b in re.findall(r'(?:^|[{,])\s*(?:"([\w.]+)"|(\w+)): "', block, re.M)}

    assert keys(en) == keys(zh)
    used = set(re.findall(r'data-i18n(?:-aria)?="([\w.]+)"', "".join(
        p.read_text(encoding="utf-8") for p in (portal.HERE / "templates").iterdir())))
    js = "".join(p.read_text(encoding="utf-8") for p in (STATIC / "js").glob("*.js"))
    used |= set(re.findall(r'\bt\("([\w.]+)"', js))
    assert used <= keys(en), used - keys(en)
