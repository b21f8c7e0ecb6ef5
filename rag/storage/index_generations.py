"""Where each collection's index lives: the one place that names its files.

A collection's index is a Chroma collection, a lexical SQLite file and a manifest SQLite file.
Generation 0 keeps the names of the single-index days; `archivist reindex` builds generation N+1
under new names beside the active one, then switches a small JSON pointer in the index folder
with one atomic rename, so readers never see a half-built index.  With ARCHIVIST_DB_URL the
pointer is a row of the shared database instead (Pointer), so every host switches together: each
request reads it (one indexed lookup), and a replica's next request opens the new generation.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from rag.core.collection_folders import DEFAULT

POINTER = "generations.json"
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class IndexNames:
    collection: str
    generation: int
    chroma_collection: str
    lexical_path: Path
    manifest_path: Path

    def remove_files(self) -> None:
        """Delete the lexical and manifest files of this generation (not Chroma's: the store
        drops its collection itself)."""
        if self.generation == 0:
            for path in (self.lexical_path, self.manifest_path):
                for extra in _SQLITE_SIDE_FILES:
                    Path(f"{path}{extra}").unlink(missing_ok=True)
        else:
            shutil.rmtree(self.lexical_path.parent, ignore_errors=True)


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
    index_dir.mkdir(parents=True, exist_ok=True)  # with a Chroma server it may hold nothing else
    fd, tmp = tempfile.mkstemp(prefix=".generations-", dir=index_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, index_dir / POINTER)


def names(index_dir: Path, collection: str, generation: int) -> IndexNames:
    if generation == 0:
        chroma = DEFAULT if collection == DEFAULT else f"c-{collection}"  # Chroma wants 3+ chars
        manifest = "manifest.sqlite3" if collection == DEFAULT else f"manifest-{collection}.sqlite3"
        return IndexNames(collection, 0, chroma, index_dir / f"lexical-{collection}.sqlite3",
                          index_dir / manifest)
    folder = index_dir / f"gen-{collection}-{generation}"
    base = names(index_dir, collection, 0).chroma_collection
    return IndexNames(collection, generation, f"{base}-g{generation}", folder / "lexical.sqlite3",
                      folder / "manifest.sqlite3")


def current(index_dir: Path, collection: str) -> IndexNames:
    return names(index_dir, collection, active(index_dir, collection))


def every_current(index_dir: Path) -> dict[str, IndexNames]:
    """The active names of every collection that has a lexical index in `index_dir` (an index
    folder or a staged copy of one), without opening anything."""
    found = {path.name[len("lexical-"):-len(".sqlite3")] for path in index_dir.glob("lexical-*.sqlite3")}
    found |= set(_read(index_dir))
    return {name: current(index_dir, name) for name in sorted(found)}


class Pointer:
    """Which generation of each collection is current, for one Library: the index folder's
    generations.json, or with `db_url` a row of the shared database."""

    _PG_MIGRATIONS = [("001_generations", "CREATE TABLE index_generations ("
                       "collection TEXT PRIMARY KEY, generation INTEGER NOT NULL)")]

    def __init__(self, index_dir: Path, db_url: str | None = None) -> None:
        self.index_dir = index_dir
        self.db_url = db_url
        self._db = None
        self._lock = threading.Lock()  # one connection, shared by request threads

    def _database(self):
        if self._db is None:
            from rag.storage.database import Database

            self._db = Database(self.db_url, "generations", [], self._PG_MIGRATIONS)
        return self._db

    def active(self, collection: str) -> int:
        if self.db_url:
            with self._lock:
                row = self._database().execute(
                    "SELECT generation FROM index_generations WHERE collection = ?",
                    (collection,)).fetchone()
            if row is not None:
                return int(row[0])
            # no row yet: a deployment moving to the database keeps its folder's generation
        return active(self.index_dir, collection)

    def recorded(self, collection: str) -> bool:
        """Whether the database already names a generation for this collection."""
        with self._lock:
            return self._database().execute(
                "SELECT 1 FROM index_generations WHERE collection = ?", (collection,)).fetchone() is not None

    def set_active(self, collection: str, generation: int) -> None:
        if not self.db_url:
            set_active(self.index_dir, collection, generation)
            return
        with self._lock:
            self._database().execute(
                "INSERT INTO index_generations VALUES (?, ?) ON CONFLICT (collection) "
                "DO UPDATE SET generation = excluded.generation", (collection, generation))

    def current(self, collection: str) -> IndexNames:
        return names(self.index_dir, collection, self.active(collection))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
