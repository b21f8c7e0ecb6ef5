"""Keep the index in step with the data folder while the server runs.

Polling, not inotify: it works the same on every file system (network shares and bind mounts
included) and costs one stat per file per round.  A change is synced once the folder has stood
still for `settle` seconds, so a file still being copied is not ingested half-written; the sync
itself is the ordinary incremental ingest, so renames reuse vectors and deletions remove chunks.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ingest.indexer import Indexer
from ingest.lock import IndexBusyError
from ingest.pipeline import IngestReport, scan
from rag.audit.events import Actor
from rag.core import collection_folders
from rag.library import Library

log = logging.getLogger(__name__)
WATCHER = Actor.system("folder watcher")  # who the audit log names for its syncs

Snapshot = dict[str, dict[str, tuple[int, int]]]  # collection -> source -> (size, mtime_ns)


class FolderWatcher:
    def __init__(self, library: Library, interval: float = 2.0, settle: float = 3.0,
                 on_sync: Callable[[str, IngestReport], None] | None = None) -> None:
        self.library = library
        self.interval = interval
        self.settle = settle
        self.on_sync = on_sync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> Snapshot:
        data_dir = self.library.settings.data_dir
        snap: Snapshot = {}
        for name in collection_folders.names(data_dir):
            folder = collection_folders.folder(data_dir, name)
            files = {}
            for source, path in scan(folder, collection_folders.skipped(data_dir, name)):
                try:
                    st = path.stat()
                except OSError:  # deleted between listing and stat: the next round sees it
                    continue
                files[source] = (st.st_size, st.st_mtime_ns)
            snap[name] = files
        return snap

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="folder-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        # Nothing counts as synced at start: the first round catches up with changes made while
        # the server was down (a stat per file when there are none).
        synced: Snapshot = {}
        seen, changed_at = synced, 0.0
        while not self._stop.wait(self.interval):
            try:
                now = self.snapshot()
            except OSError as exc:
                log.warning("watch: cannot read the data folder: %s", exc)
                continue
            if now != seen:
                seen, changed_at = now, time.monotonic()
                continue
            if now == synced or time.monotonic() - changed_at < self.settle:
                continue
            synced = self._sync(synced, now)

    def _sync(self, before: Snapshot, now: Snapshot) -> Snapshot:
        """Ingest each collection whose files changed; returns what is now in the index."""
        done = dict(before)
        for name, files in now.items():
            if before.get(name) == files:
                continue
            try:
                report = Indexer(self.library.collection(name), WATCHER).ingest()
            except IndexBusyError:  # an `archivist ingest` is running: try again next round
                log.info("watch: index busy, will retry")
                continue
            except Exception:  # keep watching; the error is in the log and the next change retries
                log.exception("watch: sync of collection %s failed", name)
                continue
            done[name] = files
            log.info("watch: %s: %s", name, report.summary())
            if self.on_sync:
                self.on_sync(name, report)
        for name in set(done) - set(now):
            del done[name]
        return done
