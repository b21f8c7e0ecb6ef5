"""What the Chinese lexical changes (OpenCC, bigrams, opening line, four BM25 columns) cost a full
ingest, measured in one run on the same chunks.

    .venv/bin/python bench/lexical_cost.py [--files 40] [--before COMMIT]

Takes the first N pages of every folder of both evaluation corpora (bench/corpus.py), ingests
them dense-only (parse, chunk, embed, Chroma: everything but the lexical index), then writes
the lexical index of those chunks twice per version, alternating: with this checkout's
rag/storage/lexical_sqlite.py and with the one at COMMIT (default: the commit before the change),
loaded from git under another module name.  Prints the best time of each and the ratio (full ingest
with the new lexical index) / (full ingest with the old one).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import build_corpus  # noqa: E402
from rag.core.offline import enforce_offline  # noqa: E402

BEFORE = "ec57500"  # main when the change began


def old_lexical(commit: str, dest: Path):
    # The module was rag/lexical.py until rag/ became sub-packages.
    for old_path in ("rag/storage/lexical_sqlite.py", "rag/lexical.py"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{old_path}"],
                               capture_output=True, text=True)
        if shown.returncode == 0:
            break
    shown.check_returncode()
    source = shown.stdout
    path = dest / "lexical_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lexical_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lexical_before"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sample(corpora: list[Path], dest: Path, per_folder: int) -> Path:
    import shutil

    for corpus in corpora:
        for sub in sorted(corpus.iterdir()):
            (dest / sub.name).mkdir(parents=True, exist_ok=True)
            for path in sorted(sub.iterdir())[:per_folder]:
                shutil.copy2(path, dest / sub.name / path.name)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40, help="pages taken from each corpus folder")
    parser.add_argument("--before", default=BEFORE, help="the commit whose keyword index is 'old'")
    args = parser.parse_args()
    enforce_offline()
    from unittest.mock import patch

    from ingest.chunking import Chunker
    from ingest.manifest import Manifest
    from ingest.pipeline import Ingestor
    from rag.core.settings import Settings
    from rag.library import Library
    from rag.storage.chunk_store import ChromaTarget, ChunkStore
    from rag.storage.lexical_sqlite import SqliteLexicalIndex

    class NoLexicalIndex:
        def replace_source(self, source, chunks): pass
        def delete_source(self, source): pass
        def sources(self): return set()
        def clear(self): pass
        def bump_version(self): pass

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpora = [build_corpus(ROOT / ".eval" / "corpus", "public"),
                   build_corpus(ROOT / ".eval" / "corpus-zh", "zh-hard")]
        data = sample(corpora, tmp / "data", args.files)
        collection = Library(Settings(data_dir=data, index_dir=tmp / "unused")).default
        embedder, s = collection.embedder, collection.settings.chunking
        store = ChunkStore(ChromaTarget(tmp / "chroma"), "bench", collection.build_info())
        manifest = Manifest(tmp / "manifest.sqlite3")
        chunker = Chunker(embedder.count_tokens, embedder.max_tokens, s.chunk_tokens, s.chunk_overlap_tokens)
        ingestor = Ingestor(store, NoLexicalIndex(), manifest, embedder, chunker, 10**9)
        started = time.perf_counter()
        with patch("ingest.pipeline.reconcile_lexical", return_value=False):
            ingestor.sync(data)
        dense = time.perf_counter() - started
        manifest.close()
        by_source: dict[str, list] = {}
        for chunk in store.iter_chunks():
            by_source.setdefault(chunk.source, []).append(chunk)
        old = old_lexical(args.before, tmp)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for run in range(2):
            before = getattr(old, "SqliteLexicalIndex", None) or old.LexicalIndex  # its old name
            for name, cls in (("old", before), ("new", SqliteLexicalIndex)):
                index = cls(tmp / f"lexical-{name}-{run}.sqlite3")
                started = time.perf_counter()
                for source, chunks in by_source.items():
                    index.replace_source(source, sorted(chunks, key=lambda c: c.ordinal))
                times[name].append(time.perf_counter() - started)
                index.close()
        before, after = min(times["old"]), min(times["new"])
        print(f"files: {len(by_source)}, chunks: {sum(map(len, by_source.values()))}")
        print(f"dense-only ingest:            {dense:.1f} s")
        print(f"lexical index, before ({args.before}): {before:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times['old'])})")
        print(f"lexical index, now:           {after:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times['new'])})")
        print(f"full ingest now / before:     {(dense + after) / (dense + before):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
