"""What was indexed from which file: a small SQLite table next to the Chroma store.

One row per file seen in the data folder.  `file_hash` is the content hash of the version whose
chunks are in the index (NULL if none ever was); `size`/`mtime_ns` let an unchanged file be
recognised without reading it.  Schema changes go through MIGRATIONS, applied in order once each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rag.db import connect, migrate

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
    # No longer used: the index version lives with the lexical index (rag/lexical.py), which
    # readers open anyway.  Kept so that existing manifests migrate the same way.
    ("002_index_version", """
        CREATE TABLE index_version (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL,
                                    version INTEGER NOT NULL);
        INSERT INTO index_version VALUES (1, lower(hex(randomblob(8))), 0)
        """),
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
    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        migrate(self._db, MIGRATIONS)

    def all(self) -> dict[str, FileRecord]:
        rows = self._db.execute(
            "SELECT source, file_hash, size, mtime_ns, status, error, chunks, updated_at FROM files")
        return {r[0]: FileRecord(*r) for r in rows}

    def record_indexed(self, source: str, file_hash: str, size: int, mtime_ns: int, chunks: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, 'indexed', NULL, ?, ?)",
            (source, file_hash, size, mtime_ns, chunks, time.time()))

    def record_failed(self, source: str, previous: FileRecord | None, size: int, mtime_ns: int,
                      error: str) -> None:
        """Keep the hash and chunk count of the last good version: its chunks stay searchable."""
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, 'failed', ?, ?, ?)",
            (source, previous.file_hash if previous else None, size, mtime_ns, error,
             previous.chunks if previous else 0, time.time()))

    def touch(self, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE source = ?",
                         (size, mtime_ns, source))

    def remove(self, source: str) -> None:
        self._db.execute("DELETE FROM files WHERE source = ?", (source,))

    def close(self) -> None:
        self._db.close()
