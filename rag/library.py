"""Every collection of one data folder, sharing one copy of the models, one answer record store
and one audit log.

The HTTP app and the CLI ask the Library for a collection by name (an unknown name is a
NotFoundError listing the existing ones).  A Collection holds what its readers and its writer
share: its settings, its index views, the models, the records and the audit log.  Answering is
rag's Assistant (`collection.assistant`); writing is ingest's Indexer, built over the same
Collection.  The records and the audit log open together, once the key in force has been checked
(rag/audit/upkeep.py), so that nothing is written with the wrong key.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from rag.audit.log import AuditLog
from rag.audit.upkeep import require_key_in_force
from rag.core import collection_folders
from rag.core.settings import Settings
from rag.models.loaded import Models
from rag.storage import index_generations
from rag.storage.answer_records import Records
from rag.storage.index_views import IndexView, IndexViews
from rag.storage.sealing import Keyring

# Called with (collection name, ingest report) after each write to an index, e.g. by metrics.
IngestListener = Callable[[str, Any], None]


class Collection:
    def __init__(self, settings: Settings, models: Models, records: Callable[[], Records],
                 listeners: list[IngestListener], pointer: index_generations.Pointer,
                 audit: Callable[[], AuditLog]) -> None:
        self.settings = settings
        self.pointer = pointer  # the library's: which generation of each collection is current
        self.name = settings.collection
        self.models = models
        self._records = records
        self._audit = audit
        self.listeners = listeners  # the library's list: one set of observers for all
        self.views = IndexViews(self.open_view, self.current_names)
        self._assistant = None
        self._lock = threading.Lock()

    @property
    def data_dir(self) -> Path:
        """The collection's folder (NotFoundError once its marker is gone)."""
        return collection_folders.folder(self.settings.data_dir, self.name)

    @property
    def records(self) -> Records:
        return self._records()

    @property
    def audit(self) -> AuditLog:
        """The library's audit log (rag/audit/log.py)."""
        return self._audit()

    @property
    def assistant(self):
        """The collection's question answering (rag/answering/assistant.py)."""
        from rag.answering.assistant import Assistant

        with self._lock:
            if self._assistant is None:
                self._assistant = Assistant(self)
            return self._assistant

    def build_info(self) -> dict[str, str]:
        """What an index must have been built with to be read with these settings."""
        return {"embed_model": self.models.embedder.fingerprint,
                "chunking": self.settings.chunking.fingerprint()}

    def current_names(self) -> index_generations.IndexNames:
        return self.pointer.current(self.name)

    def open_view(self, names: index_generations.IndexNames) -> IndexView:
        return IndexView(self.settings.chroma, names, self.build_info(), self.settings.db_url)

    def close(self) -> None:
        self.views.close()


class Library:
    def __init__(self, settings: Settings, models: Models | None = None,
                 audit: AuditLog | None = None) -> None:
        """`models`: ready-made models (tests pass fakes); by default the configured ones, loaded
        on first use.  `audit`: a ready-made audit log (bench/audit_overhead.py passes one that
        records nothing, to measure what recording costs); by default the configured one."""
        self.settings = settings
        self.models = models or Models(settings)
        self.listeners: list[IngestListener] = []
        self._collections: dict[str, Collection] = {}
        self._records: Records | None = None
        self._audit: AuditLog | None = audit
        self._given_audit = audit is not None  # the caller's to close
        self.pointer = index_generations.Pointer(settings.index_dir, settings.db_url)
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return collection_folders.names(self.settings.data_dir)

    def collection(self, name: str | None = None) -> Collection:
        """The named collection (the configured default when None)."""
        name = name or self.settings.collection
        with self._lock:
            found = self._collections.get(name)
            if found is None:
                collection_folders.folder(self.settings.data_dir,
                                          collection_folders.check_name(name))  # 404
                found = Collection(self.settings.for_collection(name), self.models,
                                   self.records_store, self.listeners, self.pointer,
                                   lambda: self.audit)
                self._collections[name] = found
            return found

    @property
    def default(self) -> Collection:
        return self.collection(collection_folders.DEFAULT)

    def create(self, name: str) -> Collection:
        """Make data/NAME/ a collection (the folder may already hold files)."""
        collection_folders.create(self.settings.data_dir, name)
        return self.collection(name)

    def records_store(self) -> Records:
        """Answers and conversations of every collection, in one file (opened on first use,
        with the audit log)."""
        self.open_stores()
        return self._records

    @property
    def audit(self) -> AuditLog:
        """The audit log of every collection (opened on first use, with the records)."""
        self.open_stores()
        return self._audit

    def open_stores(self) -> None:
        """Open the records and the audit log, sealing with the configured key once it is
        checked to be the one in force (else AuditKeyError, and nothing is opened)."""
        with self._lock:
            if self._records is not None:
                return
            keyring = Keyring.from_file(self.settings.audit.audit_key_file)
            records = Records(self.settings.records_db, keyring)
            log = self._audit
            try:
                if log is None:
                    log = AuditLog.configured(self.settings, keyring)
                    require_key_in_force(log, records)
            except BaseException:
                records.close()
                if log is not None:
                    log.close()
                raise
            self._records, self._audit = records, log

    def close(self) -> None:
        """Close every index view, the records and the audit log, and free the chat model."""
        with self._lock:
            for collection in self._collections.values():
                collection.close()
            if self._records is not None:
                self._records.close()
                self._records = None
            if self._audit is not None and not self._given_audit:
                self._audit.close()
                self._audit = None
        self.pointer.close()
        self.models.close()
