"""What was indexed from which file: a small SQLite table next to the Chroma store (or, with
ARCHIVIST_DB_URL, rows of one PostgreSQL table, keyed by the index they describe).

One row per file seen in the data folder.  `file_hash` is the content hash of the version whose
chunks are in the index (NULL if none ever was); `size`/`mtime_ns` let an unchanged file be
recognised without reading it.  Schema changes go through MIGRATIONS, applied in order once each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rag.core.settings import Settings
from rag.storage.database import Database
from rag.storage.index_generations import IndexNames

MIGRATIONS: list[tuple[str, str]] = [
    ("001_files", """
        CREATE TABLE files (
            source      TEXT PRIMARY KEY,
            file_hash   TEXT,
            size        INTEGER NOT NULL,
            mtime_ns    INTEGER NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
            error       TEXT,
            chunks      INTEGER NOT NULL DEFAULT 0,
            updated_at  REAL NOT NULL
        )"""),
    # No longer used: the index version lives with the lexical index
    # (rag/storage/lexical_sqlite.py), which readers open anyway.  Kept so that existing manifests
    # migrate the same way.
    ("002_index_version", """
        CREATE TABLE index_version (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL,
                                    version INTEGER NOT NULL);
        INSERT INTO index_version VALUES (1, lower(hex(randomblob(8))), 0)
        """),
]
# PostgreSQL: one table for every collection and generation, `index_name` saying whose row it is
# (the generation's Chroma collection name, unique per collection and generation).
PG_MIGRATIONS: list[tuple[str, str]] = [
    ("001_files", """
        CREATE TABLE manifest_files (
            index_name  TEXT NOT NULL,
            source      TEXT NOT NULL,
            file_hash   TEXT,
            size        BIGINT NOT NULL,
            mtime_ns    BIGINT NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
            error       TEXT,
            chunks      INTEGER NOT NULL DEFAULT 0,
            updated_at  DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (index_name, source)
        )"""),
]


@dataclass(frozen=True)
class FileRecord:
    source: str
    file_hash: str | None
    size: int
    mtime_ns: int
    status: str
    error: str | None
    chunks: int
    updated_at: float = 0.0


class Manifest:
    def __init__(self, target: Path | str, index_name: str = "") -> None:
        """`target`: the SQLite file, or a postgresql:// URL; `index_name` picks the index's rows
        there (a SQLite file holds one index's)."""
        self._db = Database(target, "manifest", MIGRATIONS, PG_MIGRATIONS)
        if self._db.postgres:
            self._table, self._scope, self._key = "manifest_files", " AND index_name = ?", (index_name,)
        else:
            self._table, self._scope, self._key = "files", "", ()

    @classmethod
    def open(cls, settings: Settings, names: IndexNames) -> Manifest:
        """The manifest of this generation of the index, wherever the settings keep it."""
        return cls(settings.db_url or names.manifest_path, names.chroma_collection)

    @staticmethod
    def exists(settings: Settings, names: IndexNames) -> bool:
        return bool(settings.db_url) or names.manifest_path.exists()

    @classmethod
    def drop(cls, settings: Settings, names: IndexNames) -> None:
        """Forget a dropped generation's rows (in SQLite, its file goes with the generation)."""
        if settings.db_url:
            manifest = cls.open(settings, names)
            try:
                manifest._db.execute("DELETE FROM manifest_files WHERE index_name = ?", manifest._key)
            finally:
                manifest.close()

    def all(self) -> dict[str, FileRecord]:
        rows = self._db.execute(
            "SELECT source, file_hash, size, mtime_ns, status, error, chunks, updated_at "
            f"FROM {self._table} WHERE true{self._scope}", self._key)
        return {r[0]: FileRecord(*r) for r in rows}

    def _put(self, source: str, file_hash: str | None, size: int, mtime_ns: int, status: str,
             error: str | None, chunks: int) -> None:
        values = (source, file_hash, size, mtime_ns, status, error, chunks, time.time())
        if not self._db.postgres:
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            return
        self._db.execute(
            "INSERT INTO manifest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (index_name, source) DO UPDATE SET file_hash = excluded.file_hash, "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status, "
            "error = excluded.error, chunks = excluded.chunks, updated_at = excluded.updated_at",
            self._key + values)

    def copy_from(self, other: Manifest) -> None:
        """Every record of `other` (another index's manifest) into this one (import)."""
        for r in other.all().values():
            self._put(r.source, r.file_hash, r.size, r.mtime_ns, r.status, r.error, r.chunks)

    def record_indexed(self, source: str, file_hash: str, size: int, mtime_ns: int, chunks: int) -> None:
        self._put(source, file_hash, size, mtime_ns, "indexed", None, chunks)

    def record_failed(self, source: str, previous: FileRecord | None, size: int, mtime_ns: int,
                      error: str) -> None:
        """Keep the hash and chunk count of the last good version: its chunks stay searchable."""
        self._put(source, previous.file_hash if previous else None, size, mtime_ns, "failed", error,
                  previous.chunks if previous else 0)

    def touch(self, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute(f"UPDATE {self._table} SET size = ?, mtime_ns = ? WHERE source = ?{self._scope}",
                         (size, mtime_ns, source) + self._key)

    def remove(self, source: str) -> None:
        self._db.execute(f"DELETE FROM {self._table} WHERE source = ?{self._scope}", (source,) + self._key)

    def close(self) -> None:
        self._db.close()
