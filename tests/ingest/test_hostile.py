"""Hostile and broken input (tests/hostile.py): every file is either ingested correctly or reported
as failed with a reason, and the rest of the run completes.  Fake embedder: this is about the
pipeline, not the vectors; real Chroma, lexical index and parsers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import resource
import time
import tracemalloc
from pathlib import Path

import pytest

from ingest.parsers import parse_file
from rag.core.errors import ParseError
from tests.fakes import FakeEmbedder
from tests.hostile import BOMB_UNZIPPED, SECRET, write_hostile, write_tiny_files, zip_bomb
from tests.workspace import Workspace


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The hostile corpus ingested once with a 1 MB file limit: (ws, expectations, report)."""
    root = tmp_path_factory.mktemp("hostile")
    expect = write_hostile(root / "data", root / "outside")
    embedder = FakeEmbedder()
    ws = Workspace.make(root, max_file_mb=1, embedder=embedder)
    report = ws.indexer.ingest()
    return ws, expect, report, embedder


def texts_by_source(ws) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in sorted(ws.store.iter_chunks(), key=lambda c: (c.source, c.ordinal)):
        out[chunk.source] = out.get(chunk.source, "") + "\n" + chunk.text
    return out


def test_every_hostile_file_is_ingested_or_reported_with_its_reason(hostile):
    ws, expect, report, _ = hostile
    failures = {f.source: f.reason for f in report.failures}
    texts = texts_by_source(ws)
    wrong = []
    for source, want in expect.items():
        if want.ok:
            missing = [w for w in want.words if w not in texts.get(source, "")]
            if source in failures or missing:
                wrong.append((source, failures.get(source), missing))
        elif source not in failures or want.failure not in failures[source]:
            wrong.append((source, "expected failure", want.failure, failures.get(source)))
    assert not wrong, wrong
    # Nothing else was indexed or reported: links were not followed, hidden files skipped.
    assert set(texts) | set(failures) == set(expect)
    assert report.added == sum(w.ok for w in expect.values())
    assert report.failed == len(failures) == sum(not w.ok for w in expect.values())


def test_links_out_of_the_folder_and_loops_are_not_followed(hostile):
    ws, _, report, _ = hostile
    sources = ws.store.sources() | {f.source for f in report.failures}
    assert not any(s.startswith(("loop/", "outside-", "dangling")) for s in sources), sources
    assert all(SECRET not in text for text in texts_by_source(ws).values())


def test_awkward_names_are_stored_printable_and_serialisable(hostile):
    ws, _, report, _ = hostile
    sources = ws.store.sources() | {f.source for f in report.failures}
    assert "new\\nline.txt" in sources and "caf\\xe9-\\xff.txt" in sources
    for source in sources:
        assert source.isprintable() and source.encode("utf-8")
    json.dumps(report.to_dict(), ensure_ascii=False)  # the CLI's --json must not choke
    assert all("\n" not in line.split(": ", 1)[0] for line in report.summary().splitlines())
    hits = ws.assistant.search("harbour master", top_k=3)
    assert hits and hits[0].source == "caf\\xe9-\\xff.txt"


def test_the_same_file_twice_is_embedded_once(hostile):
    ws, _, _, embedder = hostile
    dup = [c for c in ws.store.iter_chunks() if c.source.startswith("dup/")]
    one = sorted(c.text for c in dup if c.source == "dup/one.docx")
    assert one and one == sorted(c.text for c in dup if c.source == "dup/two.docx")
    assert all(embedder.embedded.count(text) <= 1 for text in embedder.embedded)


def test_a_second_run_over_the_hostile_folder_changes_nothing(hostile):
    ws, expect, _, _ = hostile
    before = ws.store.count()
    report = ws.indexer.ingest()
    assert report.unchanged == sum(w.ok for w in expect.values())
    assert report.failed == sum(not w.ok for w in expect.values())
    assert report.chunks_embedded == 0 and ws.store.count() == before


def test_zip_bomb_is_refused_from_its_declared_sizes_without_inflating_it(tmp_path):
    zip_bomb(tmp_path / "bomb.docx")
    assert (tmp_path / "bomb.docx").stat().st_size < BOMB_UNZIPPED / 500
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match="zip bomb"):
            parse_file(tmp_path / "bomb.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"peak {peak / 1e6:.1f} MB while refusing a {BOMB_UNZIPPED >> 20} MB bomb"


def test_big_and_bomb_files_keep_memory_bounded(tmp_path):
    """Peak RSS of this process grows little while a run meets a 200 MB bomb and a 50 MB file
    (over a 10 MB limit): neither is read into memory."""
    data = tmp_path / "data"
    data.mkdir()
    zip_bomb(data / "bomb.pptx")
    with (data / "huge.txt").open("wb") as fh:
        fh.truncate(50 << 20)  # sparse: costs no disk
    (data / "small.txt").write_text("A small file about lighthouses.", encoding="utf-8")
    ws = Workspace.make(tmp_path, max_file_mb=10, embedder=FakeEmbedder())
    ws.store  # Chroma's own start-up memory is not what is measured
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    report = ws.indexer.ingest()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.added == 1 and report.failed == 2
    assert grown_mb < 40, f"peak RSS grew by {grown_mb:.0f} MB"


@pytest.fixture
def fast_dir(tmp_path):
    """A folder on tmpfs when there is one: Chroma syncs to disk on every write (about 28 ms per
    write on a plain disk here, 3.5 ms on tmpfs), which this test is not about."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="archivist-test-", dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_five_thousand_tiny_files(fast_dir):
    write_tiny_files(fast_dir / "data", 5000)
    ws = Workspace.make(fast_dir, embedder=FakeEmbedder())
    started = time.perf_counter()
    report = ws.indexer.ingest()
    elapsed = time.perf_counter() - started
    assert (report.added, report.failed, report.chunks_total) == (5000, 0, 5000), report.summary()
    assert ws.lexical.count() == 5000 and len(ws.store.sources()) == 5000
    hits = ws.lexical.search(["item4321"], k=1)
    assert hits[0].source == "batch043/note04321.csv"
    again = ws.indexer.ingest()
    assert again.unchanged == 5000 and again.chunks_embedded == 0
    print(f"5000 tiny files ingested in {elapsed:.1f} s")
