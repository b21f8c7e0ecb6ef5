"""SQLite as every local store here uses it: WAL (readers never wait for the writer), a generous
busy timeout for concurrent processes, and versioned migrations applied once each."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit connection usable from several threads (callers serialise with a lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    for attempt in range(50):  # switching a new database to WAL ignores the busy timeout
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    return db


def migrate(db: sqlite3.Connection, migrations: list[tuple[str, str]]) -> None:
    """Apply the named steps not applied yet, in order, each in its own transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    for name, sql in migrations:
        if name not in done:
            db.executescript(f"BEGIN IMMEDIATE; {sql}; "
                             f"INSERT INTO migrations VALUES ('{name}', {time.time()}); COMMIT;")
