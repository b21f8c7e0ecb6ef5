"""SQLite as every local store here uses it: WAL (readers never wait for the writer), a generous
busy timeout for concurrent processes, and versioned migrations applied once each; and
`Database`, which puts a store in PostgreSQL instead when it is given a postgresql:// URL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Iterator


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
        if name in done:
            continue
        try:
            db.executescript(f"BEGIN IMMEDIATE; {sql}; "
                             f"INSERT INTO migrations VALUES ('{name}', {time.time()}); COMMIT;")
        except sqlite3.OperationalError:
            # Another connection may have applied it while this one waited for the write lock.
            if db.in_transaction:
                db.execute("ROLLBACK")
            if not db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                raise


# --- one store, either database ------------------------------------------------------------
# A store (records, keys, manifests) lives in a SQLite file by default, or in PostgreSQL when
# ARCHIVIST_DB_URL names one, so that several hosts share it.  Stores write their SQL once, with
# `?` placeholders and syntax both databases accept (INSERT ... ON CONFLICT), and branch on
# `Database.postgres` only where the two differ.

def is_postgres(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Database:
    """A connection to one store, in autocommit mode; `transaction()` groups writes."""

    def __init__(self, target: Path | str, store: str, migrations: list[tuple[str, str]],
                 pg_migrations: list[tuple[str, str]]) -> None:
        self.postgres = is_postgres(target)
        self._target = target
        if self.postgres:
            self._conn = _pg_connect(str(target))
            _pg_migrate(self._conn, store, pg_migrations)
        else:
            self._conn = connect(Path(target))
            migrate(self._conn, migrations)

    def execute(self, sql: str, params: tuple | list = ()):
        """A cursor (fetchone, fetchall, rowcount, iteration) over the statement's result."""
        if not self.postgres:
            return self._conn.execute(sql, params)
        if self._unusable():
            # The server restarted or the network dropped: the next statement reconnects,
            # rather than every later request failing on a dead connection.
            self._conn.close()
            self._conn = _pg_connect(str(self._target))
        if params:
            sql = sql.replace("%", "%%").replace("?", "%s")
        return self._conn.execute(sql, params or None)

    def _unusable(self) -> bool:
        """The PostgreSQL connection is dead: marked broken, or, when cut while a statement was
        being sent, left "active" with no statement running (psycopg holds the connection's lock
        for every statement, so an active state seen while holding it is one nobody will end;
        every later statement would fail with "another command is already in progress")."""
        from psycopg.pq import TransactionStatus  # loaded already: this is a PostgreSQL store

        if self._conn.broken:
            return True
        with self._conn.lock:
            return self._conn.info.transaction_status in (TransactionStatus.ACTIVE,
                                                          TransactionStatus.UNKNOWN)

    def copy(self, table: str, rows: list[tuple]) -> None:
        """Bulk rows, in the table's column order, with PostgreSQL's COPY (PostgreSQL only)."""
        with self._conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; in SQLite it takes the write lock up front (BEGIN IMMEDIATE), so a
        read-then-write cannot be overtaken by another process."""
        if self.postgres:
            with self._conn.transaction():
                yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk): rolling back again
            # would fail and hide the error that matters.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:  # e.g. the disk filled up as the journal was written
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()


def _pg_connect(url: str):
    import psycopg  # only deployments with ARCHIVIST_DB_URL need it loaded

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


# Any fixed number: the advisory lock that serialises migrations of every store in a database.
_MIGRATION_LOCK = 0x41524348


def _pg_migrate(conn, store: str, migrations: list[tuple[str, str]]) -> None:
    """rag/db.migrate for PostgreSQL: the steps of each store are named per store, since all
    stores share one database; processes starting together take turns (an advisory lock)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (store TEXT NOT NULL, "
                     "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, "
                     "PRIMARY KEY (store, name))")
        done = {row[0] for row in conn.execute(
            "SELECT name FROM schema_migrations WHERE store = %s", (store,))}
        for name, sql in migrations:
            if name not in done:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                             (store, name, time.time()))
