"""Sync semantics with the real embedding model and a real Chroma on a temp dir."""

import shutil

import pytest

from ingest.lock import IndexBusyError
from tests.workspace import Workspace

COUNTS = {"added", "updated", "unchanged", "removed", "failed", "chunks_embedded"}


@pytest.fixture
def ws(tmp_path, data_dir, real_embedder):
    return Workspace.make(tmp_path, embedder=real_embedder)


def sources(ws):
    return ws.store.sources()


def test_first_ingest_adds_everything_and_the_report_has_integer_counts(ws, data_dir):
    report = ws.indexer.ingest().to_dict()
    assert COUNTS <= set(report) and all(isinstance(report[k], int) for k in COUNTS)
    assert report["added"] == 10 and report["failed"] == 0 and report["failures"] == []
    assert report["chunks_embedded"] == ws.store.count() > 10
    assert "reports/turbine.pdf" in sources(ws)


def test_unchanged_folder_embeds_nothing(ws, real_embedder):
    ws.indexer.ingest()
    count = ws.store.count()
    report = ws.indexer.ingest()
    assert (report.unchanged, report.added, report.updated, report.chunks_embedded) == (10, 0, 0, 0)
    assert ws.store.count() == count


def test_touched_but_identical_file_is_unchanged(ws, data_dir):
    ws.indexer.ingest()
    (data_dir / "handbook.md").write_bytes((data_dir / "handbook.md").read_bytes())
    report = ws.indexer.ingest()
    assert report.unchanged == 10 and report.chunks_embedded == 0


def test_changed_file_replaces_its_chunks_and_embeds_only_new_text(ws, data_dir):
    ws.indexer.ingest()
    path = data_dir / "handbook.md"
    path.write_text(path.read_text().replace("25 days", "27 days"), encoding="utf-8")
    report = ws.indexer.ingest()
    assert (report.updated, report.unchanged, report.chunks_embedded) == (1, 9, 1)
    texts = [c.text for c in ws.assistant.search("paid leave days per year", top_k=3)]
    assert any("27 days" in t for t in texts) and not any("25 days" in t for t in texts)


def test_deleted_file_loses_its_chunks(ws, data_dir):
    ws.indexer.ingest()
    (data_dir / "deck.pptx").unlink()
    shutil.rmtree(data_dir / "legacy")
    report = ws.indexer.ingest()
    assert report.removed == 4
    assert not {"deck.pptx", "legacy/gbk.txt"} & sources(ws)


def test_renamed_or_copied_file_costs_no_embedding(ws, data_dir):
    ws.indexer.ingest()
    (data_dir / "specs.docx").rename(data_dir / "orion.docx")
    shutil.copy(data_dir / "guide.html", data_dir / "guide-copy.html")
    report = ws.indexer.ingest()
    assert (report.added, report.removed, report.chunks_embedded) == (2, 1, 0)
    assert {"orion.docx", "guide-copy.html"} <= sources(ws)


def test_bad_files_are_reported_and_do_not_stop_the_run(ws, data_dir):
    (data_dir / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (data_dir / "empty.txt").write_bytes(b"")
    (data_dir / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (data_dir / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    report = ws.indexer.ingest()
    assert report.added == 10 and report.failed == 4
    reasons = {f.source: f.reason for f in report.failures}
    assert "damaged" in reasons["broken.pdf"]
    assert "the file is empty" in reasons["empty.txt"]
    assert "image is damaged" in reasons["photo.jpg"]
    assert "unsupported" in reasons["clip.mp4"]


def test_a_file_that_breaks_keeps_its_last_good_version(ws, data_dir):
    ws.indexer.ingest()
    (data_dir / "reports" / "turbine.pdf").write_bytes(b"%PDF-1.4 now broken")
    report = ws.indexer.ingest()
    assert report.failed == 1 and report.updated == 0
    assert "reports/turbine.pdf" in sources(ws)


def test_oversized_files_are_skipped_with_a_reason(tmp_path, data_dir, real_embedder):
    ws = Workspace.make(tmp_path, max_file_mb=0.001, embedder=real_embedder)
    report = ws.indexer.ingest()
    assert any("limit" in f.reason for f in report.failures)


def test_orphaned_chunks_from_an_interrupted_run_are_removed(ws, data_dir):
    ws.indexer.ingest()
    from ingest.manifest import Manifest

    manifest = Manifest(ws.collection.current_names().manifest_path)
    manifest.remove("deck.pptx")  # as if the run died after writing chunks, before the manifest
    manifest.close()
    (data_dir / "deck.pptx").unlink()
    ws.indexer.ingest()
    assert "deck.pptx" not in sources(ws)


def test_a_second_ingest_waits_for_the_first_then_gives_up_with_a_reason(tmp_path, data_dir,
                                                                        real_embedder):
    import threading
    import time

    from filelock import FileLock

    impatient = Workspace.make(tmp_path, embedder=real_embedder, ingest_lock_wait_s=0.3)
    impatient.settings.index_dir.mkdir(parents=True)
    lock = FileLock(str(impatient.settings.index_dir / "ingest.lock"))
    with lock:
        with pytest.raises(IndexBusyError, match="Another ingest") as exc:
            impatient.indexer.ingest()
        assert "ARCHIVIST_INGEST_LOCK_WAIT_S" in exc.value.hint
    ws = Workspace.make(tmp_path, embedder=real_embedder, ingest_lock_wait_s=30)
    held = threading.Event()

    def other_writer():  # holds the lock for a moment, in its own thread (file locks are per thread)
        with FileLock(str(ws.settings.index_dir / "ingest.lock")):
            held.set()
            time.sleep(0.5)

    threading.Thread(target=other_writer).start()
    held.wait()
    assert ws.indexer.ingest().added > 0


def test_changing_the_embedding_model_is_refused_until_rebuild(tmp_path, data_dir, real_embedder,
                                                               fake_embedder):
    from rag.errors import IndexMismatchError

    Workspace.make(tmp_path, embedder=real_embedder).indexer.ingest()
    other = Workspace.make(tmp_path, embedder=fake_embedder)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        other.indexer.ingest()
    report = other.indexer.ingest(rebuild=True)
    assert report.added == 10 and other.store.count() > 0


def test_an_unchanged_resync_does_not_list_the_vector_store(ws, monkeypatch):
    """Listing every source reads all chunk metadata; with nothing written and the chunk counts
    agreeing there can be no orphan to find."""
    from rag.store import ChunkStore

    ws.indexer.ingest()
    listed = []
    real = ChunkStore.sources
    monkeypatch.setattr(ChunkStore, "sources", lambda self: listed.append(1) or real(self))
    report = ws.indexer.ingest()
    assert report.unchanged > 0 and report.added == report.updated == report.removed == 0
    assert listed == []
