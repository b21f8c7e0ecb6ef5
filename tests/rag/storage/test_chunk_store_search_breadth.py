"""Chroma's HNSW search breadth (ARCHIVIST_HNSW_EF_SEARCH): set on a new collection, given to
one built before (its graph untouched, its chunks all still there), real Chroma on a temp dir."""

from __future__ import annotations

import subprocess
import sys

from rag.core.settings import ChromaTarget, Settings
from rag.storage.chunk_store import ChunkStore


def _breadth(path, name) -> int:
    """Read in a fresh process: what any later process opening the store gets."""
    code = ("import chromadb, sys; c = chromadb.PersistentClient(path=sys.argv[1]); "
            "print(c.get_collection(sys.argv[2]).configuration['hnsw']['ef_search'])")
    out = subprocess.run([sys.executable, "-c", code, str(path), name], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1])


def test_the_setting_reaches_new_and_existing_collections(tmp_path):
    assert Settings(data_dir=tmp_path, index_dir=tmp_path).chroma.ef_search == 400  # the default
    old = ChunkStore(ChromaTarget(tmp_path / "chroma"), "before", {"embed_model": "m"})
    old._collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]],
                        documents=["a", "b"], metadatas=[{"source": "a"}, {"source": "b"}])
    assert _breadth(tmp_path / "chroma", "before") == 100  # Chroma's own, as in older indexes
    ChunkStore(ChromaTarget(tmp_path / "chroma", ef_search=400), "fresh", {"embed_model": "m"})
    assert _breadth(tmp_path / "chroma", "fresh") == 400

    reopened = ChunkStore(ChromaTarget(tmp_path / "chroma", ef_search=300), "before", {"embed_model": "m"})
    assert _breadth(tmp_path / "chroma", "before") == 300
    assert reopened.count() == 2
