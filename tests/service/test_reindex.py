"""`archivist reindex`: a new index is built beside the active one; searches never come back empty."""

from __future__ import annotations

import threading
import time

import pytest

from rag.core.errors import IndexMismatchError
from rag.storage import index_generations
from service.cli import main
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace

QUESTION = "Which port does the metrics exporter listen on?"


class SlowEmbedder(FakeEmbedder):
    """Another model (new fingerprint) that takes its time: widens the reindex window."""

    fingerprint = "fake:64:v2"

    def embed(self, texts, kind="passage"):
        time.sleep(0.05)
        return super().embed(texts, kind)


def test_searches_keep_answering_during_a_reindex(tmp_path, data_dir):
    settings = make_settings(tmp_path)
    ws = Workspace.of(settings, embedder=FakeEmbedder())
    ws.indexer.ingest()
    before = [c.chunk_id for c in ws.assistant.search(QUESTION)]
    assert before

    # The same ws (sharing its models) after the model changed: reindex in a thread.
    ws.library.models._embedder = SlowEmbedder()
    done = threading.Event()
    results: list[int] = []
    errors: list[BaseException] = []

    def reindex():
        try:
            ws.indexer.reindex()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    reader = Workspace.of(settings, embedder=FakeEmbedder())  # a reader still on the old model
    reader.assistant.search(QUESTION)
    thread = threading.Thread(target=reindex)
    thread.start()
    while not done.is_set():
        results.append(len(ws.assistant.search(QUESTION)))  # old model's index until the switch
    thread.join()
    assert not errors, errors
    assert len(results) >= 3 and all(results), results

    assert index_generations.active(settings.index_dir, "default") == 1
    assert ws.store.count() > 0 and [c.chunk_id for c in ws.assistant.search(QUESTION)] == before
    first = index_generations.names(settings.index_dir, "default", 0)
    assert not first.lexical_path.exists() and not first.manifest_path.exists()
    assert {d.source for d in ws.indexer.documents()} == {d.source for d in reader.indexer.documents()}
    # Another ws reads the pointer: the new index, built with the new model.
    fresh = Workspace.of(settings, embedder=SlowEmbedder())
    assert [c.chunk_id for c in fresh.assistant.search(QUESTION)] == before
    with pytest.raises(IndexMismatchError) as err:  # the old model no longer fits the index
        reader.assistant.search(QUESTION)
    assert "archivist reindex" in err.value.hint

    ws.indexer.reindex()  # generation 2 replaces generation 1's folder
    assert index_generations.active(settings.index_dir, "default") == 2
    assert not (settings.index_dir / "gen-default-1").exists()
    assert [c.chunk_id for c in fresh.assistant.search(QUESTION)] == before


def test_cli_reindex(tmp_path, data_dir, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    Workspace.of(settings, embedder=FakeEmbedder()).indexer.ingest()
    monkeypatch.setattr("rag.models.loaded.load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(settings.index_dir))
    assert main(["reindex", "--collection", "default"]) == 0
    assert "default:" in capsys.readouterr().out
    assert index_generations.active(settings.index_dir, "default") == 1
