"""Which generation of each collection's index is active: a small JSON pointer in the index folder.

Generation 0 is the index under its original names (settings.chroma_collection, lexical_path,
manifest_path).  `archivist reindex` builds generation N+1 under new names beside the active one,
then switches the pointer with one atomic rename, so searches never see a half-built index.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.settings import Settings

POINTER = "generations.json"


@dataclass(frozen=True)
class IndexNames:
    generation: int
    chroma_collection: str
    lexical_path: Path
    manifest_path: Path


def _read(index_dir: Path) -> dict[str, int]:
    try:
        data = json.loads((index_dir / POINTER).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def active(index_dir: Path, collection: str) -> int:
    return _read(index_dir).get(collection, 0)


def set_active(index_dir: Path, collection: str, generation: int) -> None:
    """Atomic: a reader sees the old pointer or the new one, never a torn file."""
    data = _read(index_dir)
    data[collection] = generation
    fd, tmp = tempfile.mkstemp(prefix=".generations-", dir=index_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / POINTER)


def names(settings: Settings, generation: int) -> IndexNames:
    if generation == 0:
        return IndexNames(0, settings.chroma_collection, settings.lexical_path, settings.manifest_path)
    folder = settings.index_dir / f"gen-{settings.collection}-{generation}"
    return IndexNames(generation, f"{settings.chroma_collection}-g{generation}",
                      folder / "lexical.sqlite3", folder / "manifest.sqlite3")


def current(settings: Settings) -> IndexNames:
    return names(settings, active(settings.index_dir, settings.collection))
