"""Collections: separate indexes per marked sub-folder; results never cross them."""

import json

import pytest
from tests.http import local_client

from rag.core import collection_folders
from rag.core.errors import ArchivistError, NotFoundError
from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.cli import main
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace


@pytest.fixture
def library(tmp_path):
    settings = make_settings(tmp_path, min_score=0.1)
    data = settings.data_dir
    (data / "guides").mkdir(parents=True)
    (data / "guides" / "boat.md").write_text("# Boat\n\nThe rescue launch uses VHF channel 72.\n")
    (data / "hr").mkdir()  # a collection: marked
    (data / "hr" / collection_folders.MARKER).touch()
    (data / "hr" / "leave.md").write_text("# Leave\n\nNew staff get 25 days of annual leave.\n")
    (data / "finance").mkdir()
    (data / "finance" / "budget.md").write_text("# Budget\n\nThe rescue launch budget is 40,000 euros.\n")
    lib = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator("ok [1].")))
    lib.create("finance")  # an existing folder becomes a collection
    for name in lib.names():
        Workspace(lib, name).indexer.ingest()
    yield lib
    lib.close()


def sources(ws, question):
    return {c.source for c in ws.assistant.search(question, 10)}


def test_each_collection_indexes_only_its_folder(library):
    assert library.names() == ["default", "finance", "hr"]
    assert sources(Workspace(library, "default"), "rescue launch VHF budget leave") == {"guides/boat.md"}
    assert sources(Workspace(library, "finance"), "rescue launch VHF budget leave") == {"budget.md"}
    assert sources(Workspace(library, "hr"), "annual leave days") == {"leave.md"}
    assert Workspace(library, "hr").collection.models is Workspace(library, "finance").collection.models  # one copy of the models
    assert [d.source for d in Workspace(library, "finance").indexer.documents()] == ["budget.md"]


def test_a_folder_made_a_collection_moves_out_of_the_default_one(library):
    library.create("guides")  # guides/ was part of the default collection
    assert Workspace(library, "default").indexer.ingest().removed == 1
    assert sources(Workspace(library, "default"), "rescue launch") == set()
    assert Workspace(library, "guides").indexer.ingest().added == 1
    assert sources(Workspace(library, "guides"), "rescue launch") == {"boat.md"}


def test_bad_and_unknown_collection_names(library):
    with pytest.raises(NotFoundError, match="No collection 'legal'") as exc:
        Workspace(library, "legal")
    assert "archivist collections create legal" in exc.value.hint
    for bad in ("../etc", "Finance", "", "a/b"):
        with pytest.raises(ArchivistError):
            library.create(bad)


def test_http_requests_name_their_collection(library):
    with local_client(create_app(library.settings, library=library)) as client:
        body = client.post("/v1/search", json={"question": "rescue launch budget",
                                               "collection": "finance"}).json()
        assert {r["source"] for r in body["results"]} == {"budget.md"}
        missing = client.post("/v1/ask", json={"question": "leave?", "collection": "legal"})
        assert missing.status_code == 404 and "collections create" in missing.json()["hint"]
        assert client.post("/v1/collections", json={"name": "legal"}).status_code == 201
        listed = client.get("/v1/collections").json()["collections"]
        assert [(c["name"], c["documents"]) for c in listed] == [
            ("default", 1), ("finance", 1), ("hr", 1), ("legal", 0)]
        bad = client.post("/v1/collections", json={"name": "../x"})
        assert bad.status_code == 422 and "not a valid collection name" in bad.json()["detail"]


def test_cli_creates_lists_and_ingests_every_collection(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.md").write_text("# A\n\nalpha text\n")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(data))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    assert main(["collections", "create", "hr"]) == 0
    (data / "hr" / "b.md").write_text("# B\n\nbeta text\n")
    capsys.readouterr()
    assert main(["ingest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 2 and report["collections"]["hr"]["added"] == 1
    assert main(["collections", "--json"]) == 0
    assert [(c["name"], c["files"]) for c in json.loads(capsys.readouterr().out)] == [
        ("default", 1), ("hr", 1)]
    assert main(["search", "beta", "--collection", "hr", "--json"]) == 0
    assert [r["source"] for r in json.loads(capsys.readouterr().out)["results"]] == ["b.md"]
    assert main(["search", "beta", "--collection", "nope"]) == 2
    assert "collections create nope" in capsys.readouterr().err
