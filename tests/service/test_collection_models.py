"""An embedding model per collection: an English collection on all-MiniLM-L6-v2 beside a Chinese
one on multilingual-e5-small, in one library, with the real models, real Chroma; the choice in
the collection's marker, seen by every process; a switch by `reindex --embed-model`."""

from __future__ import annotations

import json

import pytest
from tests.http import local_client

from ingest.indexer import Indexer
from rag.core import collection_folders
from rag.core.errors import ArchivistError, BadRequestError
from rag.library import Library
from rag.models.loaded import Models
from service.app import create_app
from service.cli import main
from service.doctor import run_checks
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder, FakeGenerator
from tests.workspace import Workspace

E5 = "multilingual-e5-small"
ENGLISH = {
    "mkdir.md": "# mkdir\n\nmkdir creates a new folder, and with -p also its missing parents.\n",
    "rm.md": "# rm\n\nrm deletes files; with -r it deletes folders and everything in them.\n",
}
CHINESE = {
    "rmdir.md": "# rmdir\n\nrmdir 命令用于删除空目录；目录里还有文件时，它会报错并拒绝删除。\n",
    "tac.md": "# tac\n\ntac 命令反向连接文件并打印，最后一行最先输出。\n",
}


def _library(settings, real_embedder, e5_embedder) -> Library:
    models = Models(settings, embedder=real_embedder, embedders={E5: e5_embedder})
    return Library(settings, models)


@pytest.fixture
def settings(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, text in ENGLISH.items():
        (data / name).write_text(text, encoding="utf-8")
    return make_settings(tmp_path)  # ARCHIVIST_EMBED_MODEL: all-MiniLM-L6-v2


def test_two_collections_two_models_one_library(settings, real_embedder, e5_embedder):
    library = _library(settings, real_embedder, e5_embedder)
    zh = library.create("zh", E5)
    for name, text in CHINESE.items():
        (zh.data_dir / name).write_text(text, encoding="utf-8")
    assert (zh.data_dir / collection_folders.MARKER).read_text() == f'embed_model = "{E5}"\n'
    for name in library.names():
        assert Indexer(library.collection(name)).ingest().failed == 0

    english, chinese = Workspace(library), Workspace(library, "zh")
    assert english.collection.embed_model == "all-MiniLM-L6-v2"
    assert chinese.collection.embed_model == E5
    # each with its own model's tuned settings (rag/core/model_defaults.py)
    assert english.settings.retrieval.min_score == 0.52
    assert chinese.settings.retrieval.min_score == 0.88
    assert chinese.store._collection.metadata["archivist:embed_model"] == e5_embedder.fingerprint
    assert english.store._collection.metadata["archivist:embed_model"] == real_embedder.fingerprint
    assert chinese.assistant.search("怎么删除一个空目录")[0].source == "rmdir.md"
    assert english.assistant.search("how do I make a new folder")[0].source == "mkdir.md"

    # doctor: each collection's model suits its documents, so no advice; a Chinese collection on
    # MiniLM would be told which model ranks it better and how to switch
    from service.doctor import _model_advice
    assert _model_advice(library) == {}
    for name, text in CHINESE.items():
        (settings.data_dir / name).write_text(text, encoding="utf-8")
    (settings.data_dir / "rm.md").unlink()
    Indexer(library.default).ingest()
    advice = _model_advice(library)["default"]
    assert "67% of its 3 chunks are Chinese" in advice
    assert advice.endswith("archivist reindex --collection default --embed-model multilingual-e5-small")
    library.close()

    # another process over the same folders reads the choice from the marker
    again = _library(settings, real_embedder, e5_embedder)
    assert again.collection("zh").embed_model == E5
    assert Workspace(again, "zh").assistant.search("反向打印文件")[0].source == "tac.md"
    again.close()


def test_reindex_with_another_model_switches_every_reader(settings, real_embedder, e5_embedder):
    writer = _library(settings, real_embedder, e5_embedder)
    reader = _library(settings, real_embedder, e5_embedder)  # a second process, serving
    Indexer(writer.default).ingest()
    assert Workspace(reader).assistant.search("delete a folder")[0].source == "rm.md"
    for name, text in CHINESE.items():
        (settings.data_dir / name).write_text(text, encoding="utf-8")

    report = Indexer(writer.default).reindex(
        embed_model=E5, choose=lambda model: writer.choose_embed_model("default", model))
    assert report.added == len(ENGLISH) + len(CHINESE)
    assert collection_folders.choices(settings.data_dir, "default") == {"embed_model": E5}
    assert writer.default.embed_model == E5
    # the serving process picks the new model up with the new generation, no restart
    reader_ws = Workspace(reader)
    assert reader_ws.collection.embed_model == E5
    assert reader_ws.settings.retrieval.language_offset == 0.05
    hits = reader_ws.assistant.search("how do I remove an empty directory")
    assert hits[0].source == "rmdir.md"  # English question, Chinese passage: e5's strength
    # an ingest keeps using the chosen model (no mismatch with the index it built)
    (settings.data_dir / "rm.md").write_text(ENGLISH["rm.md"] + "\nrm -i asks before each file.\n")
    assert Indexer(writer.default).ingest().updated == 1
    writer.close()
    reader.close()


def test_an_unknown_model_is_refused_before_anything_is_written(settings, real_embedder, e5_embedder):
    library = _library(settings, real_embedder, e5_embedder)
    with pytest.raises(BadRequestError, match="no-such-model") as caught:
        library.create("legal", "no-such-model")
    assert E5 in caught.value.hint
    assert not (settings.data_dir / "legal").exists()
    Indexer(library.default).ingest()
    with pytest.raises(BadRequestError):
        Indexer(library.default).reindex(embed_model="no-such-model", choose=lambda m: None)
    assert collection_folders.choices(settings.data_dir, "default") == {}
    assert Workspace(library).assistant.search("make a folder")[0].source == "mkdir.md"
    library.close()


@pytest.mark.parametrize("marker, problem", [
    ("embed_model = 3\n", "non-text"),
    ("embed_modle = \"multilingual-e5-small\"\n", "embed_modle"),
    ("embed_model = \n", "not valid TOML"),
])
def test_a_broken_marker_says_what_it_may_hold(tmp_path, marker, problem):
    (tmp_path / "data" / "hr").mkdir(parents=True)
    (tmp_path / "data" / "hr" / collection_folders.MARKER).write_text(marker)
    settings = make_settings(tmp_path)
    library = Library(settings, Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator("ok")))
    with pytest.raises(ArchivistError, match=problem) as caught:
        library.collection("hr")
    assert "embed_model" in caught.value.hint
    library.close()


def test_http_and_cli_name_each_collections_model(tmp_path, monkeypatch, capsys):
    settings = make_settings(tmp_path, min_score=0.1)
    settings.data_dir.mkdir()
    models = Models(settings, embedder=FakeEmbedder(), generator=FakeGenerator("ok"),
                    embedders={E5: FakeEmbedder()})
    library = Library(settings, models)
    with local_client(create_app(settings, library=library)) as client:
        created = client.post("/v1/collections", json={"name": "zh", "embed_model": E5})
        assert created.status_code == 201 and created.json() == {"name": "zh", "embed_model": E5}
        unknown = client.post("/v1/collections", json={"name": "x", "embed_model": "nope"})
        assert unknown.status_code == 422 and E5 in unknown.json()["hint"]
        listed = {c["name"]: c["embed_model"] for c in client.get("/v1/collections").json()["collections"]}
        assert listed == {"default": "all-MiniLM-L6-v2", "zh": E5}
        refused = client.post("/v1/reindex", json={"embed_model": E5})
        assert refused.status_code == 422 and "collection" in refused.json()["hint"]
    report = run_checks(library)  # `archivist doctor`: each collection's model, each one tried
    assert report["models"]["collections"] == {"default": "all-MiniLM-L6-v2", "zh": E5}
    assert report["offline"]["steps"][f"embed ({E5})"] == "ok"
    library.close()

    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(settings.index_dir))
    assert main(["reindex", "--embed-model", E5]) == 2
    assert "--collection NAME --embed-model" in capsys.readouterr().err
    assert main(["collections", "--json"]) == 0
    assert {c["name"]: c["embed_model"] for c in json.loads(capsys.readouterr().out)} == {
        "default": "all-MiniLM-L6-v2", "zh": E5}


def test_ingest_tells_a_chinese_collection_on_minilm_which_model_ranks_it_better(tmp_path,
                                                                               monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name, text in CHINESE.items():
        (data / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(data))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(tmp_path / "index"))
    assert main(["ingest"]) == 0  # the configured model: all-MiniLM-L6-v2
    out, err = capsys.readouterr()
    assert out.startswith("2 added")
    assert ("tip: default: 100% of its 2 chunks are Chinese and it uses all-MiniLM-L6-v2; "
            "multilingual-e5-small ranks such a collection better") in err
    assert err.rstrip().endswith("archivist reindex --collection default --embed-model "
                                 "multilingual-e5-small")
    assert main(["ingest", "--json"]) == 0  # the JSON report stays as it was
    assert "tip:" not in capsys.readouterr().err
