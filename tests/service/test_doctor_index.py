"""`archivist doctor`'s index check: a sample of chunks must be found by their own vectors
(real Chroma on a temp dir), and a graph that no longer reaches some says what to do."""

from __future__ import annotations

from rag.storage.chunk_store import ChunkStore
from service.doctor import _index
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace


def test_every_sampled_chunk_of_a_fresh_index_is_reachable(tmp_path, data_dir):
    ws = Workspace.make(tmp_path, embedder=FakeEmbedder())
    ws.indexer.ingest()
    missed, checked = ws.store.unreachable(sample=1000)
    assert (missed, checked) == ([], ws.store.count())  # fewer chunks than the sample: all of them
    report = _index(ws.library)
    assert report["reachable"] == {"checked": checked, "found": checked}


def test_chunks_the_graph_no_longer_reaches_are_reported_with_the_remedy(tmp_path, data_dir,
                                                                       monkeypatch):
    ws = Workspace.make(tmp_path, embedder=FakeEmbedder())
    ws.indexer.ingest()
    # Chroma's answer stood in for: the state chroma-core/chroma#7758 describes.
    monkeypatch.setattr(ChunkStore, "unreachable", lambda self, sample=200, k=10: (["c-17"], 200))
    reachable = _index(ws.library)["reachable"]
    assert (reachable["checked"], reachable["found"]) == (200, 199)
    assert reachable["hint"].startswith("1 of 200 sampled chunks are not found")
    assert "c-17" in reachable["hint"]
    assert reachable["hint"].endswith("`archivist reindex --collection default` builds a fresh one "
                                      "without downtime.")


def test_an_empty_index_checks_nothing(tmp_path):
    ws = Workspace.make(tmp_path, embedder=FakeEmbedder())
    (tmp_path / "data").mkdir()
    ws.indexer.ingest()
    assert ws.store.unreachable() == ([], 0)
