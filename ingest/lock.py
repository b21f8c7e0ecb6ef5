"""One writer per index folder, across processes: ingest, uploads, the folder sync, reindex and
export all hold this lock.  Readers never take it (see rag/storage/index_views.py).

With ARCHIVIST_DB_URL the lock is a PostgreSQL advisory lock instead of a file, so that writers
on several hosts sharing the database (and a Chroma server) take turns too.  It is held by a
connection of its own: a host that dies drops the connection, and PostgreSQL the lock with it."""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from typing import Iterator

from rag.core.errors import ArchivistError
from rag.core.settings import Settings

log = logging.getLogger(__name__)

# pg_advisory_lock's two-key form: Archivist's class id (any fixed number), then the index's.
# The database is the index's shared state (one database per deployment, as one Chroma server
# per deployment), and every collection shares one writer, as with the file lock: so the index's
# key is one fixed number too, stable across versions and hosts.
_LOCK_CLASS = 0x41524348
INGEST_KEY = zlib.crc32(b"archivist:ingest") - 2**31  # the keys are signed 4-byte integers
_POLL_S = 0.2


class IndexBusyError(ArchivistError):
    """Another ingest holds the index."""


def _busy(where: object) -> IndexBusyError:
    return IndexBusyError(f"Another ingest is running on {where}.",
                          hint="Wait for it to finish, then try again (or raise "
                               "ARCHIVIST_INGEST_LOCK_WAIT_S).")


@contextlib.contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """A second writer waits up to ingest_lock_wait_s (typically behind a short folder sync or
    upload), saying so, then fails with IndexBusyError."""
    if settings.db_url:
        with _advisory_lock(settings):
            yield
        return
    from filelock import FileLock, Timeout

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.index_dir / "ingest.lock"))
    wait = settings.ingest.ingest_lock_wait_s
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise
            log.warning("another ingest is writing to %s; waiting up to %.0f s for it",
                        settings.index_dir, wait)
            lock.acquire(timeout=wait)
    except Timeout:
        raise _busy(settings.index_dir) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _advisory_lock(settings: Settings) -> Iterator[None]:
    import psycopg

    key = (_LOCK_CLASS, INGEST_KEY)
    wait = settings.ingest.ingest_lock_wait_s
    # Polling pg_try_advisory_lock rather than waiting in pg_advisory_lock: the wait is bounded
    # here, and a waiter never holds a statement open that an operator would have to cancel.
    with psycopg.connect(settings.db_url, autocommit=True, connect_timeout=10) as conn:
        deadline = time.monotonic() + wait
        warned = False
        while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise _busy("this deployment's database (advisory lock)")
            if not warned:
                log.warning("another ingest is writing to the index (PostgreSQL advisory "
                            "lock); waiting up to %.0f s for it", wait)
                warned = True
            time.sleep(_POLL_S)
        try:
            yield
        finally:
            if not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
