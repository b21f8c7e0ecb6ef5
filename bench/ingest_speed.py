"""Ingest time with the lexical index against dense-only, on the same files, in one run.

    .venv/bin/python bench/ingest_speed.py [--files 150]

Takes the first N pages of each evaluation corpus (bench/corpus.py), ingests them into fresh
indexes twice per mode, alternating, and prints the best time of each mode and the ratio.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from unittest.mock import patch
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from ingest.chunking import Chunker  # noqa: E402
from ingest.manifest import Manifest  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.library import Collection, Library  # noqa: E402
from rag.storage.chunk_store import ChromaTarget, ChunkStore  # noqa: E402
from rag.storage.lexical_sqlite import SqliteLexicalIndex  # noqa: E402


class NoLexicalIndex:
    """Dense-only: the lexical side does nothing."""

    def replace_source(self, source, chunks): pass
    def delete_source(self, source): pass
    def sources(self): return set()
    def clear(self): pass
    def bump_version(self): pass


def sample(corpus: Path, dest: Path, per_set: int) -> Path:
    for sub in corpus.iterdir():
        (dest / sub.name).mkdir(parents=True)
        for path in sorted(sub.iterdir())[:per_set]:
            shutil.copy2(path, dest / sub.name / path.name)
    return dest


def ingest_once(data: Path, work: Path, collection: Collection, lexical: bool) -> float:
    """One ingest into a new folder (Chroma keeps a client per path for the life of the
    process, so a deleted and recreated folder would still hold the old vectors)."""
    s = collection.settings.chunking
    embedder = collection.models.embedder
    store = ChunkStore(ChromaTarget(work / "chroma"), "bench", collection.build_info())
    index = SqliteLexicalIndex(work / "lexical.sqlite3") if lexical else NoLexicalIndex()
    manifest = Manifest(work / "manifest.sqlite3")
    chunker = Chunker(embedder.count_tokens, embedder.max_tokens, s.chunk_tokens,
                      s.chunk_overlap_tokens)
    ingestor = Ingestor(store, index, manifest, embedder, chunker, 10**9)
    started = time.perf_counter()
    with patch("ingest.pipeline.reconcile_lexical", return_value=False) if not lexical else nullcontext():
        ingestor.sync(data)
    elapsed = time.perf_counter() - started
    manifest.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=150, help="pages taken from each corpus")
    args = parser.parse_args()
    enforce_offline()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = sample(build_corpus(ROOT / ".eval" / "corpus"), tmp / "data", args.files)
        collection = Library(Settings(data_dir=data, index_dir=tmp / "unused")).default
        times = {True: [], False: []}
        for run in range(2):
            for lexical in (False, True):
                work = tmp / f"index-{run}-{lexical}"
                times[lexical].append(ingest_once(data, work, collection, lexical))
        dense, hybrid = min(times[False]), min(times[True])
        print(f"files: {sum(1 for _ in data.rglob('*.html'))}")
        print(f"dense-only ingest:  {dense:.1f} s (runs: {', '.join(f'{t:.1f}' for t in times[False])})")
        print(f"hybrid ingest:      {hybrid:.1f} s (runs: {', '.join(f'{t:.1f}' for t in times[True])})")
        print(f"hybrid / dense:     {hybrid / dense:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
