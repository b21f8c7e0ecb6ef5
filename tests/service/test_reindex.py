"""`archivist reindex`: a new index is built beside the active one; searches never come back empty."""

from __future__ import annotations

import threading
import time

import pytest

from rag import generations
from rag.errors import IndexMismatchError
from service.cli import main
from service.engine import Engine
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder

QUESTION = "Which port does the metrics exporter listen on?"


class SlowEmbedder(FakeEmbedder):
    """Another model (new fingerprint) that takes its time: widens the reindex window."""

    fingerprint = "fake:64:v2"

    def embed(self, texts):
        time.sleep(0.05)
        return super().embed(texts)


def test_searches_keep_answering_during_a_reindex(tmp_path, data_dir):
    settings = make_settings(tmp_path)
    engine = Engine(settings, embedder=FakeEmbedder())
    engine.ingest()
    before = [c.chunk_id for c in engine.search(QUESTION)]
    assert before

    # The same engine (sharing its models) after the model changed: reindex in a thread.
    engine.models._embedder = SlowEmbedder()
    done = threading.Event()
    results: list[int] = []
    errors: list[BaseException] = []

    def reindex():
        try:
            engine.reindex()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    reader = Engine(settings, embedder=FakeEmbedder())  # an engine still on the old model
    reader.search(QUESTION)
    thread = threading.Thread(target=reindex)
    thread.start()
    while not done.is_set():
        results.append(len(engine.search(QUESTION)))  # old model's index until the switch
    thread.join()
    assert not errors, errors
    assert len(results) >= 3 and all(results), results

    assert generations.active(settings.index_dir, "default") == 1
    assert engine.store.count() > 0 and [c.chunk_id for c in engine.search(QUESTION)] == before
    assert not settings.lexical_path.exists() and not settings.manifest_path.exists()
    assert {d.source for d in engine.documents()} == {d.source for d in reader.documents()}
    # Another engine reads the pointer: the new index, built with the new model.
    fresh = Engine(settings, embedder=SlowEmbedder())
    assert [c.chunk_id for c in fresh.search(QUESTION)] == before
    with pytest.raises(IndexMismatchError) as err:  # the old model no longer fits the index
        reader.search(QUESTION)
    assert "archivist reindex" in err.value.hint

    engine.reindex()  # generation 2 replaces generation 1's folder
    assert generations.active(settings.index_dir, "default") == 2
    assert not (settings.index_dir / "gen-default-1").exists()
    assert [c.chunk_id for c in fresh.search(QUESTION)] == before


def test_cli_reindex(tmp_path, data_dir, monkeypatch, capsys):
    settings = make_settings(tmp_path)
    Engine(settings, embedder=FakeEmbedder()).ingest()
    monkeypatch.setattr("service.engine.SentenceTransformerEmbedder",
                        lambda *a, **k: FakeEmbedder())
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ARCHIVIST_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setattr("service.engine.resolve_embed_model", lambda name: name)
    assert main(["reindex", "--collection", "default"]) == 0
    assert "default:" in capsys.readouterr().out
    assert generations.active(settings.index_dir, "default") == 1
