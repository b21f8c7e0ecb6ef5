"""A collection as tests drive it: ingest/'s Indexer to write, rag/'s Assistant to read."""

from __future__ import annotations

from pathlib import Path

from ingest.indexer import Indexer
from rag.core.settings import Settings
from rag.library import Library
from rag.models.loaded import Models
from rag.retrieval.retriever import HybridRetriever
from rag.storage.chunk_store import ChunkStore
from rag.storage.lexical_sqlite import SqliteLexicalIndex
from tests.conftest import make_library


class Workspace:
    def __init__(self, library: Library, name: str | None = None) -> None:
        self.library = library
        self.collection = library.collection(name)
        self.indexer = Indexer(self.collection)
        self.assistant = self.collection.assistant

    @classmethod
    def make(cls, root: Path, embedder=None, generator=None, **overrides) -> Workspace:
        """The default collection of a new Library over root/data and root/index."""
        return cls(make_library(root, embedder, generator, **overrides))

    @classmethod
    def of(cls, settings: Settings, embedder=None, generator=None) -> Workspace:
        """The settings' collection, in a new Library with these models."""
        return cls(Library(settings, Models(settings, embedder=embedder, generator=generator)),
                   settings.collection)

    @property
    def settings(self) -> Settings:
        return self.collection.settings

    @property
    def records(self):
        return self.collection.records

    @property
    def store(self) -> ChunkStore:
        """The current generation's vector store (for assertions; requests hold a view)."""
        with self.collection.views.reading(check=False) as view:
            return view.store

    def retriever(self) -> HybridRetriever:
        with self.collection.views.reading() as view:
            return self.assistant.retriever(view)

    @property
    def lexical(self) -> SqliteLexicalIndex:
        with self.collection.views.reading(check=False) as view:
            return view.lexical
