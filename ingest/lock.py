"""One writer per index folder, across processes: ingest, uploads, the folder sync, reindex and
export all hold this lock.  Readers never take it (see rag/index.py)."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from rag.errors import ArchivistError
from rag.settings import Settings

log = logging.getLogger(__name__)


class IndexBusyError(ArchivistError):
    """Another ingest holds the index."""


@contextlib.contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """A second writer waits up to ingest_lock_wait_s (typically behind a short folder sync or
    upload), saying so, then fails with IndexBusyError."""
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
        raise IndexBusyError(f"Another ingest is running on {settings.index_dir}.",
                             hint="Wait for it to finish, then try again (or raise "
                                  "ARCHIVIST_INGEST_LOCK_WAIT_S).") from None
    try:
        yield
    finally:
        lock.release()
