"""The folder watcher: hand-made changes reach the index within seconds, half-written files wait."""

import os
import threading
import time

import pytest

from ingest.watcher import FolderWatcher
from rag.library import Library
from rag.models.loaded import Models
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace


def wait_for(condition, timeout=40.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def watched(tmp_path):
    settings = make_settings(tmp_path, min_score=0.1)
    settings.data_dir.mkdir(parents=True)
    embedder = FakeEmbedder()
    library = Library(settings, Models(settings, embedder=embedder))
    reports = []
    watcher = FolderWatcher(library, interval=0.1, settle=0.4,
                            on_sync=lambda name, report: reports.append((name, report)))
    watcher.start()
    yield library, settings.data_dir, reports, embedder
    watcher.stop()
    library.close()


def indexed(library, collection="default"):
    return {d.source: d.status for d in Workspace(library, collection).indexer.documents()}


def test_added_renamed_and_deleted_files_are_synced(watched):
    library, data, reports, embedder = watched
    (data / "a.md").write_text("# A\n\nThe tide table for March.\n")
    assert wait_for(lambda: indexed(library) == {"a.md": "indexed"})
    embedded = len(embedder.embedded)
    os.rename(data / "a.md", data / "b.md")
    assert wait_for(lambda: indexed(library) == {"b.md": "indexed"})
    assert len(embedder.embedded) == embedded  # a rename embeds nothing
    assert [c.source for c in Workspace(library, ).assistant.search("tide table March", 5)] == ["b.md"]
    (data / "b.md").unlink()
    assert wait_for(lambda: indexed(library) == {})
    assert Workspace(library, ).store.count() == 0


def test_a_file_being_written_waits_until_it_settles(watched):
    library, data, reports, _ = watched
    path = data / "growing.txt"
    done = threading.Event()

    def write_slowly():
        with path.open("w") as f:
            for i in range(12):  # 1.2 s of writing, each pause shorter than the settle time
                f.write(f"line {i} of the harbour log\n")
                f.flush()
                time.sleep(0.1)
        done.set()

    threading.Thread(target=write_slowly).start()
    while not done.is_set():
        assert "growing.txt" not in {s for s, status in indexed(library).items() if status == "indexed"}
        time.sleep(0.05)
    assert wait_for(lambda: indexed(library) == {"growing.txt": "indexed"})
    chunk = Workspace(library, ).assistant.search("harbour log", 1)[0]
    assert "line 11" in chunk.text  # the whole file, not a prefix


def test_a_new_collection_folder_is_picked_up(watched):
    library, data, reports, _ = watched
    library.create("hr")
    (data / "hr" / "leave.md").write_text("# Leave\n\n25 days.\n")
    assert wait_for(lambda: indexed(library, "hr") == {"leave.md": "indexed"})
    assert indexed(library) == {}
    # the manifest row is written before the report is handed over: wait for the report too
    assert wait_for(lambda: any(name == "hr" and report.added == 1 for name, report in reports))
