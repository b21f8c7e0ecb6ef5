"""While `archivist serve` runs, `archivist ingest` and `reindex` hand their work to it (another
process writing its embedded Chroma store would leave the server's copy stale and its searches
failing); `ingest --rebuild`, `import` and a second server refuse."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service import handoff
from service.cli import main
from tests.conftest import make_settings
from tests.server import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "apple.md").write_text("# Apples\n\nThe apple guide covers orchards.\n")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("ARCHIVIST_WATCH", "false")  # the hand-off, not the watcher, must sync
    return tmp_path


@pytest.fixture
def server(env):
    """`archivist serve` in a child process (the real CLI, with the fake embedder)."""
    port = free_port()
    log = open(env / "server.log", "w")
    child = subprocess.Popen([sys.executable, "-m", "tests.fault_cli", "serve", "--port", str(port)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None, (env / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield child, url
    finally:
        child.terminate()
        child.wait(timeout=30)
        log.close()


def search(url: str, question: str) -> list[str]:
    reply = httpx.post(f"{url}/v1/search", json={"question": question, "top_k": 3}, timeout=30)
    assert reply.status_code == 200, reply.text
    return [r["source"] for r in reply.json()["results"]]


def test_ingest_while_serving_is_done_by_the_server_which_then_finds_the_new_file(server, env, capsys):
    child, url = server
    registered = handoff.running_server(make_settings(env))
    assert registered is not None and registered.pid == child.pid and registered.url == url
    assert stat.S_IMODE((env / "index" / handoff.REGISTRY).stat().st_mode) == 0o600

    assert main(["ingest", "--json"]) == 0
    out, err = capsys.readouterr()
    assert f"pid {child.pid}" in err and json.loads(out)["added"] == 1
    assert search(url, "apple orchards") == ["apple.md"]

    # A file added after the server started: found by the server's own vector index at once.
    (env / "data" / "zebra.md").write_text("# Zebras\n\nThe zebra manual covers striped quokkas.\n")
    assert main(["ingest"]) == 0
    out, _ = capsys.readouterr()
    assert "1 added" in out and "1 unchanged" in out
    assert search(url, "zebra striped quokkas")[0] == "zebra.md"

    assert main(["serve", "--port", str(free_port())]) == 2  # a second server on this index
    assert "is already serving the index" in capsys.readouterr().err

    assert main(["reindex"]) == 0  # also handed over; the old index answers until the switch
    out, _ = capsys.readouterr()
    assert out.startswith("default: 2 added")
    assert search(url, "zebra striped quokkas")[0] == "zebra.md"

    child.terminate()
    child.wait(timeout=30)
    assert not (env / "index" / handoff.REGISTRY).exists()  # unregistered on the way out


def test_commands_that_replace_the_index_refuse_while_it_is_served(env, capsys):
    settings = make_settings(env)
    with handoff.register(settings, "127.0.0.1", free_port()):
        for argv in (["ingest", "--rebuild"], ["import", str(env / "snapshot.tar.gz")]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert "is serving this index" in err and "hint: Stop the server" in err
    assert handoff.running_server(settings) is None
    assert main(["ingest", "--rebuild", "--json"]) == 0  # once no server is registered
    assert json.loads(capsys.readouterr().out)["added"] == 1


def test_with_shared_state_servers_register_nothing_and_commands_write_themselves(env):
    """A Chroma server and PostgreSQL hold everything: replicas need no owner (the topology test,
    tests/service/test_topology.py, runs two of them and the CLI against real servers)."""
    settings = make_settings(env, chroma_url="http://chroma:8001",
                             db_url="postgresql://archivist@db/archivist")
    assert settings.shares_state
    with handoff.register(settings, "127.0.0.1", free_port()) as token:
        assert token is None and not (env / "index" / handoff.REGISTRY).exists()
        handoff.ensure_not_served(settings)  # a second replica on this host may start
        assert handoff.running_server(settings) is None  # `archivist ingest` hands nothing over
    one_side = make_settings(env, chroma_url="http://chroma:8001")  # SQLite still on this host
    assert not one_side.shares_state
    with handoff.register(one_side, "127.0.0.1", free_port()) as token:
        assert token and handoff.running_server(one_side).pid == os.getpid()


def test_a_registration_left_by_a_killed_server_is_ignored(env, capsys):
    settings = make_settings(env)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (env / "index").mkdir()
    (env / "index" / handoff.REGISTRY).write_text(json.dumps(
        {"pid": dead.pid, "url": "http://127.0.0.1:9", "token": "x"}))
    assert handoff.running_server(settings) is None
    assert main(["ingest", "--json"]) == 0  # ingests itself
    assert json.loads(capsys.readouterr().out)["added"] == 1


def test_the_ingest_route_needs_the_token_or_a_write_key(env):
    from tests.http import local_client

    from rag.library import Library
    from rag.models.loaded import Models
    from service.app import create_app
    from service.auth import KeyStore
    from tests.fakes import FakeEmbedder

    settings = make_settings(env)
    keys = KeyStore(settings.keys_path)
    reader, editor = keys.create("reader", None, "r"), keys.create("editor", None, "e")
    keys.close()
    app = create_app(settings, library=Library(settings, Models(settings, embedder=FakeEmbedder())))
    with local_client(app) as client:
        app.state.local_token = "local-secret"  # as `archivist serve`'s start-up sets it
        post = lambda headers: client.post("/v1/ingest", json={}, headers=headers)  # noqa: E731
        assert post({}).status_code == 401
        assert post({handoff.TOKEN_HEADER: "wrong"}).status_code == 401
        assert post({"Authorization": f"Bearer {reader}"}).status_code == 403
        assert post({"Authorization": f"Bearer {editor}"}).json()["added"] == 1
        assert post({handoff.TOKEN_HEADER: "local-secret"}).json()["unchanged"] == 1
        reply = client.post("/v1/reindex", json={}, headers={"Authorization": f"Bearer {editor}"})
        assert reply.status_code == 403  # rebuilding is an admin's call
