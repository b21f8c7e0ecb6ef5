"""Crash safety: an ingest killed (SIGKILL) at each write step, then run again, leaves exactly the
index a clean rebuild makes.  The killed and the recovering runs are real `archivist ingest`
processes (tests/fault_cli.py: the CLI with the fake embedder; one case uses the real CLI)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ingest.faults import POINTS
from ingest.manifest import Manifest
from rag.storage.chunk_store import ChunkStore
from rag.storage.lexical_sqlite import SqliteLexicalIndex
from tests.conftest import make_settings
from tests.fakes import FakeEmbedder
from tests.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


def paragraphs(topic: str, n: int) -> str:
    return "\n\n".join(f"{topic} paragraph {i}. " + " ".join(f"{topic}{i}word{j}" for j in range(60))
                       for i in range(n))


def write_state_a(data: Path) -> None:
    data.mkdir(parents=True)
    (data / "a-changed.md").write_text("# Alpha\n\n" + paragraphs("alpha", 6), encoding="utf-8")
    (data / "keep.txt").write_text(paragraphs("keep", 3), encoding="utf-8")
    (data / "z-gone.txt").write_text(paragraphs("gone", 3), encoding="utf-8")


def to_state_b(data: Path) -> None:
    """A changed file (some chunks kept, some new), two new files, a copy, a deletion."""
    changed = (data / "a-changed.md").read_text(encoding="utf-8").replace("alpha3", "omega3")
    (data / "a-changed.md").write_text(changed + "\n\n" + paragraphs("extra", 2), encoding="utf-8")
    (data / "b-new.txt").write_text(paragraphs("beta", 4), encoding="utf-8")
    shutil.copy(data / "keep.txt", data / "c-copy.txt")
    (data / "d-new.md").write_text("# Delta\n\n" + paragraphs("delta", 3), encoding="utf-8")
    (data / "z-gone.txt").unlink()


def ingest(root: Path, fault: str | None = None, real_cli: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVIST_")}
    env.update(ARCHIVIST_DATA_DIR=str(root / "data"), ARCHIVIST_INDEX_DIR=str(root / "index"))
    if fault:
        env["ARCHIVIST_FAULT"] = fault
    module = "service.cli" if real_cli else "tests.fault_cli"
    return subprocess.run([sys.executable, "-m", module, "ingest", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def snapshot(root: Path, embedder) -> dict:
    """Everything the invariants compare, read from a store opened fresh in this process."""
    settings = make_settings(root)
    collection = Workspace.of(settings, embedder=embedder).collection
    names = collection.current_names()
    store = ChunkStore(settings.chroma, names.chroma_collection, collection.build_info())
    chunks = list(store.iter_chunks())
    lexical_path = names.lexical_path
    SqliteLexicalIndex(lexical_path).close()  # creates the schema if the run died before it existed
    db = sqlite3.connect(lexical_path)
    lexical_rows = db.execute("SELECT chunk_id, source, text FROM chunks").fetchall()
    db.execute("INSERT INTO fts(fts) VALUES ('integrity-check')")  # raises if FTS disagrees
    db.close()
    manifest = Manifest(names.manifest_path)
    rows = manifest.all()
    manifest.close()
    return {
        "store": Counter((c.source, c.text) for c in chunks),
        "store_ids": Counter(c.chunk_id for c in chunks),
        "lexical": Counter((s, t) for _, s, t in lexical_rows),
        "lexical_ids": Counter(cid for cid, _, _ in lexical_rows),
        "per_source": Counter(c.source for c in chunks),
        "manifest": {s: (r.status, r.chunks) for s, r in rows.items()},
    }


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """State B indexed in one uninterrupted run: what every recovery must reproduce."""
    root = tmp_path_factory.mktemp("clean")
    write_state_a(root / "data")
    to_state_b(root / "data")
    Workspace.make(root, embedder=FakeEmbedder()).indexer.ingest()
    return snapshot(root, FakeEmbedder())


@pytest.fixture(scope="module")
def indexed_a(tmp_path_factory) -> Path:
    """State A ingested by the CLI once; each case copies it."""
    root = tmp_path_factory.mktemp("state-a")
    write_state_a(root / "data")
    result = ingest(root)
    assert result.returncode == 0, result.stderr
    return root


def check_invariants(got: dict, clean: dict) -> None:
    assert max(got["store_ids"].values()) == 1 and max(got["lexical_ids"].values()) == 1
    assert got["store"] == clean["store"], "Chroma chunks differ from a clean rebuild"
    assert got["lexical"] == clean["lexical"], "lexical chunks differ from a clean rebuild"
    assert set(got["store_ids"]) == set(got["lexical_ids"])
    assert got["manifest"] == clean["manifest"]
    for source, (status, chunks) in got["manifest"].items():
        assert status == "indexed" and got["per_source"][source] == chunks, source
    assert set(got["per_source"]) == set(got["manifest"]), "chunks without a manifest row"


# :1 hits the changed file (old chunks still there); before_manifest:5 is the deleted file.
CASES = [f"{point}:1" for point in POINTS] + ["before_manifest:5"]


@pytest.mark.parametrize("fault", CASES)
def test_ingest_killed_at_each_write_step_recovers_to_a_clean_index(fault, indexed_a, clean, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(indexed_a, root)
    to_state_b(root / "data")

    killed = ingest(root, fault)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])

    recovered = ingest(root)
    assert recovered.returncode == 0, recovered.stderr[-2000:]
    check_invariants(snapshot(root, FakeEmbedder()), clean)


def test_the_real_cli_honours_the_fault_point_and_recovers(tmp_path, real_embedder):
    root = tmp_path
    write_state_a(root / "data")
    killed = ingest(root, "before_manifest:2", real_cli=True)  # mid-batch
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert ingest(root, real_cli=True).returncode == 0

    clean_root = tmp_path / "clean"
    shutil.copytree(root / "data", clean_root / "data")
    Workspace.make(clean_root, embedder=real_embedder).indexer.ingest()
    check_invariants(snapshot(root, real_embedder), snapshot(clean_root, real_embedder))


def test_an_unknown_fault_point_is_an_error_not_a_silent_pass(monkeypatch):
    from ingest import faults

    monkeypatch.setenv("ARCHIVIST_FAULT", "after_parsing:1")
    with pytest.raises(ValueError, match="unknown point"):
        faults.reach("after_parse")
