"""Every collection of one data folder, sharing one copy of the models, one answer record store
and one audit log.

The HTTP app and the CLI ask the Library for a collection by name (an unknown name is a
NotFoundError listing the existing ones).  A Collection holds what its readers and its writer
share: its settings, its index views, the models, the records and the audit log.  Answering is
rag's Assistant (`collection.assistant`); writing is ingest's Indexer, built over the same
Collection.  The audit log opens first and checks that the configured key is the one in force
(rag/audit/upkeep.py); the records open after it, so that nothing is written with the wrong key.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from rag.audit.log import AuditLog
from rag.audit.upkeep import require_key_in_force
from rag.core import collection_folders
from rag.core.errors import ArchivistError, BadRequestError
from rag.core.settings import Settings
from rag.models.embedder import Embedder
from rag.models.files import SHIPPED_EMBED_MODELS
from rag.models.loaded import Models
from rag.storage import index_generations
from rag.storage.answer_records import Records
from rag.storage.index_views import IndexView, IndexViews
from rag.storage.sealing import Keyring

# The shares of Chinese chunks past which Collection.model_advice names the other model.
MOSTLY_CHINESE, HARDLY_CHINESE = 0.5, 0.05

# Called with (collection name, ingest report) after each write to an index, e.g. by metrics.
IngestListener = Callable[[str, Any], None]


def require_embed_model(models: Models, model: str) -> Embedder:
    """`model`, loaded now: a name that is neither shipped nor a model folder is the caller's
    mistake (BadRequestError naming the shipped ones); a shipped one whose package is missing is
    this installation's (ModelNotFoundError, with what to install)."""
    if model not in SHIPPED_EMBED_MODELS and not (Path(model).expanduser() / "config.json").is_file():
        raise BadRequestError(
            f"No embedding model {model!r}.",
            hint=f"Shipped: {', '.join(SHIPPED_EMBED_MODELS)} (`archivist models list`); or the "
                 f"path of a local sentence-transformers folder.")
    return models.embedder_for(model)


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
    def embed_model(self) -> str:
        """The embedding model this collection builds its index with: its own choice (its
        marker, rag/core/collection_folders.py), else ARCHIVIST_EMBED_MODEL."""
        return self.settings.embedding.embed_model

    @property
    def embedder(self) -> Embedder:
        return self.models.embedder_for(self.embed_model)

    def embedder_of(self, view: IndexView) -> Embedder:
        """The embedding model `view` was opened with: a collection that switches models is read
        and written with the model of the generation a request holds, never another."""
        return self.models.embedder_for(view.embed_model or self.embed_model)

    def rechoose(self, settings: Settings) -> None:
        """Take the settings of a newly chosen embedding model.  Views already open keep the
        model they were opened with (each view names its own), so a request in flight reads one
        generation with one model; the next opened view and the next Assistant use the new one."""
        with self._lock:
            self.settings = settings
            self._assistant = None

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

    def model_advice(self) -> str | None:
        """If the indexed chunks are mostly Chinese on all-MiniLM-L6-v2, or hardly Chinese on
        multilingual-e5-small: the other model and the command that switches (README: "A
        multilingual embedding model": Chinese ranks better with e5 on every set measured, English
        with MiniLM).  None otherwise, and for an index not built or not readable (the index
        check says why)."""
        try:
            with self.views.reading(check=False) as view:
                total = view.store.count()
                if not total or not view.store.tags_scripts:
                    return None
                share = view.store.count_script("cjk") / total
        except ArchivistError:
            return None
        model = self.embed_model
        switch = {"all-MiniLM-L6-v2": "multilingual-e5-small" if share >= MOSTLY_CHINESE else None,
                  "multilingual-e5-small": "all-MiniLM-L6-v2" if share <= HARDLY_CHINESE else None
                  }.get(model)
        if switch is None:
            return None
        return (f"{share:.0%} of its {total} chunks are Chinese and it uses {model}; {switch} ranks "
                f"such a collection better (README: A multilingual embedding model): "
                f"archivist reindex --collection {self.name} --embed-model {switch}")

    def build_info(self, embed_model: str | None = None) -> dict[str, str]:
        """What an index must have been built with to be read with these settings (with
        `embed_model` in place of the collection's, for a reindex that changes it)."""
        return {"embed_model": self.models.embedder_for(embed_model or self.embed_model).fingerprint,
                "chunking": self.settings.chunking.fingerprint()}

    def current_names(self) -> index_generations.IndexNames:
        return self.pointer.current(self.name)

    def open_view(self, names: index_generations.IndexNames,
                  embed_model: str | None = None) -> IndexView:
        model = embed_model or self.embed_model
        return IndexView(self.settings.chroma, names, self.build_info(model), self.settings.db_url,
                         embed_model=model)

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
        self._keyring: Keyring | None = None  # set once the key in force is checked
        self.pointer = index_generations.Pointer(settings.index_dir, settings.db_url)
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return collection_folders.names(self.settings.data_dir)

    def collection(self, name: str | None = None) -> Collection:
        """The named collection (the configured default when None).  Its marker is read on every
        call (a small file), so a model chosen by another process takes effect here too."""
        name = name or self.settings.collection
        with self._lock:
            found = self._collections.get(name)
            if found is None:
                collection_folders.folder(self.settings.data_dir,
                                          collection_folders.check_name(name))  # 404
            chosen = collection_folders.choices(self.settings.data_dir, name).get("embed_model")
            if found is None:
                found = Collection(self.settings.for_collection(name, chosen), self.models,
                                   self.records_store, self.listeners, self.pointer,
                                   lambda: self.audit)
                self._collections[name] = found
            elif found.embed_model != (chosen or self.settings.embedding.embed_model):
                found.rechoose(self.settings.for_collection(name, chosen))
            return found

    @property
    def default(self) -> Collection:
        return self.collection(collection_folders.DEFAULT)

    def create(self, name: str, embed_model: str | None = None) -> Collection:
        """Make data/NAME/ a collection (the folder may already hold files), embedding with
        `embed_model` if given (else ARCHIVIST_EMBED_MODEL).  A model that cannot be loaded here
        is refused before anything is written (ModelNotFoundError with what to install)."""
        if embed_model:
            require_embed_model(self.models, embed_model)
        collection_folders.create(self.settings.data_dir, name,
                                  {"embed_model": embed_model} if embed_model else None)
        return self.collection(name)

    def choose_embed_model(self, name: str, embed_model: str) -> None:
        """Record `embed_model` as the collection's choice (its marker); whoever reads the
        collection next uses it.  Called by a reindex that built the index with it, just before it
        switches to that index (ingest/indexer.py)."""
        collection_folders.write_choices(self.settings.data_dir, name, {
            **collection_folders.choices(self.settings.data_dir, name), "embed_model": embed_model})
        self.collection(name)

    def records_store(self) -> Records:
        """Answers and conversations of every collection, in one file (opened on first use,
        once the audit log has checked the key)."""
        keyring = self._open_audit()[1]
        with self._lock:
            return self._open_records(keyring)

    @property
    def audit(self) -> AuditLog:
        """The audit log of every collection (opened on first use)."""
        return self._open_audit()[0]

    def open_stores(self) -> None:
        """Open the audit log and the records now (AuditKeyError if the configured key is not
        the one in force)."""
        self.records_store()

    def _open_audit(self) -> tuple[AuditLog, Keyring]:
        """The audit log and the keyring, checked to be the key the stores are sealed with
        before anything is written with it (else AuditKeyError, and nothing stays open)."""
        with self._lock:
            if self._keyring is None:
                keyring = Keyring.from_file(self.settings.audit.audit_key_file)
                log = self._audit
                try:
                    if log is None:
                        log = AuditLog.configured(self.settings, keyring)
                        # the records are opened only if the check needs them (a key newly set)
                        require_key_in_force(log, lambda: self._open_records(keyring).plain_rows())
                except BaseException:
                    if log is not None and not self._given_audit:
                        log.close()
                    if self._records is not None:
                        self._records.close()
                        self._records = None
                    raise
                self._audit, self._keyring = log, keyring
            return self._audit, self._keyring

    def _open_records(self, keyring: Keyring) -> Records:
        """Under the lock."""
        if self._records is None:
            self._records = Records(self.settings.records_db, keyring)
        return self._records

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
            self._keyring = None
        self.pointer.close()
        self.models.close()
