"""Ingest manifests, the lexical index and the writer lock with ARCHIVIST_DB_URL: manifests and
the keyword index are rows of PostgreSQL,
and writers on two hosts (here: two processes with index folders of their own) take turns on an
advisory lock.  The manifest tests run on both backends."""

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.lock import IndexBusyError, writer_lock
from ingest.manifest import FileRecord, Manifest
from rag.storage.database import Database
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace


def test_manifest_rows(db_url, tmp_path):
    target = db_url or tmp_path / "manifest.sqlite3"
    manifest = Manifest(target, "default")
    manifest.record_indexed("a.txt", "h1", 10, 2**62, 3)  # nanosecond mtimes need 8 bytes
    assert manifest.all()["a.txt"].mtime_ns == 2**62
    manifest.record_indexed("b.txt", "h2", 20, 5, 1)
    manifest.record_failed("b.txt", manifest.all()["b.txt"], 21, 6, "cannot parse")
    manifest.record_failed("c.txt", None, 1, 1, "empty")
    manifest.touch("a.txt", 11, 7)
    manifest.record_indexed("a.txt", "h3", 12, 8, 4)  # a changed file replaces its row
    rows = manifest.all()
    assert replace(rows["a.txt"], updated_at=0) == FileRecord("a.txt", "h3", 12, 8, "indexed", None, 4)
    assert replace(rows["b.txt"], updated_at=0) == FileRecord("b.txt", "h2", 21, 6, "failed",
                                                              "cannot parse", 1)
    assert rows["c.txt"].file_hash is None and rows["c.txt"].updated_at > 0
    manifest.remove("c.txt")
    assert set(manifest.all()) == {"a.txt", "b.txt"}
    if db_url:  # one table holds every index's rows, each index seeing only its own
        other = Manifest(db_url, "default-g1")
        assert other.all() == {}
        other.record_indexed("a.txt", "x", 1, 1, 1)
        other.remove("b.txt")
        assert manifest.all()["a.txt"].file_hash == "h3" and "b.txt" in manifest.all()
        other.close()
    manifest.close()


def test_ingest_search_list_and_reindex_keep_the_index_state_in_postgres(tmp_path, postgres_server):
    url = postgres_server.fresh_database()
    data = tmp_path / "data"
    data.mkdir()
    (data / "one.txt").write_text("The boathouse opens at nine.\n")
    (data / "two.txt").write_text("Junior members pay sixty euros.\n")
    ws = Workspace.make(tmp_path, embedder=FakeEmbedder(), db_url=url, min_score=0.1)
    assert ws.indexer.ingest().added == 2
    first = ws.collection.current_names()
    assert not first.manifest_path.exists() and not first.lexical_path.exists()  # no SQLite
    assert {d.source for d in ws.indexer.documents() if d.status == "indexed"} == {"one.txt", "two.txt"}
    assert ws.indexer.ingest().unchanged == 2  # the manifest is read back from PostgreSQL
    assert ws.assistant.search("When does the boathouse open?")[0].source == "one.txt"
    ws.indexer.reindex()
    db = Database(url, "probe", [], [])
    current = [(ws.collection.current_names().chroma_collection,)]
    for table in ("manifest_files", "lexical_chunks"):  # the old generation's rows went
        assert db.execute(f"SELECT DISTINCT index_name FROM {table}").fetchall() == current
    assert len(ws.indexer.documents()) == 2
    assert ws.assistant.search("junior members")[0].source == "two.txt"
    db.close()
    ws.library.close()


# A writer on another host: takes the lock, says so, holds it until told to let go (or dies).
_OTHER_HOST = """
import sys, time
from pathlib import Path
from ingest.lock import writer_lock
from rag.core.settings import Settings
settings = Settings(data_dir=sys.argv[1], index_dir=sys.argv[2], db_url=sys.argv[3])
with writer_lock(settings):
    print("held", flush=True)
    release = Path(sys.argv[4])
    while not release.exists():
        time.sleep(0.05)
"""


def other_host(tmp_path: Path, url: str) -> tuple[subprocess.Popen, Path]:
    release = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", _OTHER_HOST, str(tmp_path / "data-b"),
                             str(tmp_path / "index-b"), url, str(release)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    assert proc.stdout.readline().strip() == "held"
    return proc, release


def test_writers_on_two_hosts_take_turns_on_the_advisory_lock(tmp_path, postgres_server):
    url = postgres_server.fresh_database()
    impatient = make_settings(tmp_path, db_url=url, ingest_lock_wait_s=0)
    patient = make_settings(tmp_path, db_url=url, ingest_lock_wait_s=30)
    proc, release = other_host(tmp_path, url)
    try:
        with pytest.raises(IndexBusyError, match="Another ingest") as exc:
            with writer_lock(impatient):
                pass
        assert "ARCHIVIST_INGEST_LOCK_WAIT_S" in exc.value.hint
        release_at = time.monotonic() + 0.5
        threading.Timer(0.5, release.touch).start()
        with writer_lock(patient):  # waits for the other host to finish
            assert time.monotonic() >= release_at
            assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_a_writer_that_dies_releases_the_lock(tmp_path, postgres_server):
    url = postgres_server.fresh_database()
    proc, _ = other_host(tmp_path, url)
    proc.kill()  # no clean release: its connection drops, and PostgreSQL frees the lock
    proc.wait()
    proc.stdout.close()
    with writer_lock(make_settings(tmp_path, db_url=url, ingest_lock_wait_s=10)):
        pass
